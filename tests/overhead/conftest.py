# The overhead checks (not test_*.py: run each by path, as its docstring says). Their cells come from
# the quantbench plugin (src/quantbench/plugin/), as the benchmarks in bench/ do.
import pytest


@pytest.fixture
def before_each_round(monkeypatch):
    """For the overhead checks: ``install(hook)`` runs ``hook()`` before every timed round of the cell
    (untimed, right before the harness's own per-round setup, the drift reference), so a bare loop and
    the harness take turns under the same machine noise."""
    from quantbench.measures import rounds

    def install(hook):
        real = rounds.run_rounds

        def interleaved(benchmark, target, rule, *, setup=None, series=None):
            def both():
                hook()
                return setup() if setup else None

            return real(benchmark, target, rule, setup=both, series=series)

        monkeypatch.setattr(rounds, "run_rounds", interleaved)

    return install

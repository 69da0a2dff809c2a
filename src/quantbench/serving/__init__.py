"""Serving under load: each variant's capacity at a latency SLO, measured by MLPerf LoadGen.

Generic code only; it names no runtime. A backend that serves through its own server (llama.cpp
through llama-server) plugs in an adapter named by its runtime's ``serving`` field (backends/<runtime>/__init__.py); every other
variant is served in process, behind the dynamic batcher (classification) or the static batcher
over its batched ``generate`` (generation).

* ``loadgen.py``: one LoadGen test (a *point*) from plain settings, run into a log folder;
  ``logs.py`` reads its summary, detail and accuracy logs back.
* ``batcher.py``: the dynamic batcher (maximum batch, maximum queue delay: Triton's semantics).
* ``sut.py``: the system under test LoadGen drives, with every query's own timestamps;
  ``inprocess.py``: the classification and generation SUTs over a Variant.
* ``timing.py``: client-side percentiles, inter-token latency and goodput from those timestamps.
* ``search.py``: the capacity search (offline bound, bounded bisection over the Poisson rate).
* ``workload.py``: the query sample library (test texts or prompts, encoded before the run).
* ``cell.py``: one ``test_serving`` cell; ``record.py``: what it records.

Durations are seconds per point, not MLPerf's 600 s: the results are not an MLPerf submission,
and every record says so.
"""

NOT_A_SUBMISSION = ("MLPerf LoadGen with shortened runs (seconds per point, not the 600 s of a submission run): "
                    "these figures are not an MLPerf result")

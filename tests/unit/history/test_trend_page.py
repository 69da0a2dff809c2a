"""The trend page (``quantbench history report``): a history of two machine fingerprints over 12 commits with a
step planted on one, drawn and then read back in headless Chromium the way tests/browser reads the run report
(``--dump-dom`` after the page's scripts ran; the page records its own layout in ``html[data-trendcheck]``):
one line per fingerprint in each chart, the change point marked at the planted commit, no console errors."""

from __future__ import annotations

import html
import json
import re
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.unit.history.synthetic_history import COMMITS, PLANTED, STEP_AT, build_history, commit_id

pytest.importorskip("sqlalchemy", reason="the history extra is not installed (pip install 'quantbench[history]')")

from quantbench.history import open_store  # noqa: E402
from quantbench.history.report import write_trend_page  # noqa: E402
from quantbench.history.series import DEFAULT_METRICS, build  # noqa: E402

LATENCY = "test_latency[minilm-tweets-fp32-pytorch-cpu-bs1-seq64]"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return build_history(tmp_path_factory.mktemp("history"))


@pytest.fixture(scope="module")
def page(synthetic, tmp_path_factory) -> Path:
    return write_trend_page(synthetic.db, tmp_path_factory.mktemp("trend"))


def test_the_series_find_the_planted_step_on_its_machine_only(synthetic):
    with open_store(synthetic.db) as store:
        history = build(store)
    assert history.commits == tuple(commit_id(i) for i in range(COMMITS))  # the store's commit order
    assert [m["id"] for m in history.machines] == [synthetic.zen3, synthetic.avx512]
    by = {(s.cell, s.metric, s.machine): s for s in history.series}
    for metric, verdict, sign in (("latency_p50_ms", "regression", 1), ("throughput_samples_per_s", "regression", -1)):
        zen3, avx = by[(LATENCY, metric, synthetic.zen3)], by[(LATENCY, metric, synthetic.avx512)]
        assert len(zen3.points) == len(avx.points) == COMMITS
        (step,) = zen3.steps
        assert step.commit == synthetic.stepped_commit and step.index == STEP_AT and step.verdict == verdict
        # The factory's latency is 4 ms x scale + 2 ms: the planted 10 % is 6.7 % of fp32's bs1 p50.
        assert sign * step.rel_step == pytest.approx((PLANTED - 1) * 4 / 6, abs=0.015)
        assert step.rel_step_interval[0] <= step.rel_step <= step.rel_step_interval[1]
        assert avx.steps == ()
    # Accuracy did not move on either machine; metrics outside the gate's defaults are not drawn.
    assert not any(s.steps for s in history.series if s.metric == "accuracy")
    assert {s.metric for s in history.series} <= set(DEFAULT_METRICS)
    # One run a commit: each point's interval is the run's own stored one, where it has one.
    accuracy = by[("test_accuracy[minilm-tweets-fp32-pytorch-cpu]", "accuracy", synthetic.zen3)]
    assert all(p.interval_from == "stored ci95" and p.low < p.value < p.high for p in accuracy.points)


def test_the_default_metrics_are_the_gates():
    from quantbench.gate.policy import DEFAULT_RULES

    gated = [m for rule in DEFAULT_RULES if not rule.skip and not rule.where for m in rule.metrics]
    assert set(DEFAULT_METRICS) == set(gated)


def test_metric_and_cell_filters_and_exact_cell_names(synthetic):
    with open_store(synthetic.db) as store:
        only = build(store, metrics=["latency_*"], cells=[LATENCY], machines=[synthetic.avx512])
    assert {(s.cell, s.machine) for s in only.series} == {(LATENCY, synthetic.avx512)}
    assert {s.metric for s in only.series} == {"latency_p50_ms", "latency_p90_ms", "latency_p95_ms",
                                               "latency_p99_ms", "latency_mean_ms"}


def test_the_page_is_self_contained_and_states_the_step(page, synthetic):
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)  # no network: nothing loaded from elsewhere
    assert '<svg class="chart trend"' in text and 'id="steps-table"' in text
    short = synthetic.stepped_commit[:7]
    row = re.search(rf'<tr data-commit="{synthetic.stepped_commit}" data-machine="{synthetic.zen3}">.*?</tr>',
                    text, re.S)
    assert row and short in row.group(0) and "regression" in row.group(0) and "+6." in row.group(0)
    data = json.loads(re.search(r'<script type="application/json" id="quantbench-data">(.*?)</script>', text,
                                re.S).group(1))
    assert data["commits"][STEP_AT] == synthetic.stepped_commit
    stepped = [s for s in data["series"] if s["change_points"]]
    assert stepped and {s["machine"] for s in stepped} == {synthetic.zen3}


# -- read in headless Chromium --------------------------------------------------------------------------------
def _chromium():
    from tests.browser.test_report_browser import CHROMIUM, FLAGS

    return CHROMIUM, FLAGS


def load(page: Path) -> tuple[dict | None, dict | None, list[str]]:
    """(the run report's self-check, the trend page's own, console lines) for a local page."""
    chromium, flags = _chromium()
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run([chromium, *flags, f"--user-data-dir={profile}", "--dump-dom",
                               page.resolve().as_uri() + "#selfcheck"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]

    def attribute(name: str) -> dict | None:
        match = re.search(rf'{name}="([^"]*)"', proc.stdout)
        return json.loads(html.unescape(match.group(1))) if match else None

    return attribute("data-selfcheck"), attribute("data-trendcheck"), console


def test_the_page_in_chromium(page, synthetic):
    chromium, _ = _chromium()
    if chromium is None:
        pytest.skip("Chromium not installed (apt-get install -y chromium)")
    selfcheck, trendcheck, console = load(page)
    assert console == []
    assert selfcheck is not None and trendcheck is not None, "the page's checks did not run"
    assert selfcheck["errors"] == []
    charts = trendcheck["charts"]
    assert charts and all(c["width"] > 300 and c["height"] > 200 for c in charts), charts[:2]
    machines = [synthetic.zen3, synthetic.avx512]
    for chart in charts:
        # One line per machine fingerprint, each through every commit, laid out; both in the legend.
        assert sorted(line["machine"] for line in chart["lines"]) == sorted(machines), chart["id"]
        assert all(line["points"] == COMMITS and line["width"] > 200 for line in chart["lines"]), chart["id"]
        assert chart["legend"] == machines
        assert len(chart["points"]) == 2 * COMMITS
    latency = {c["metric"]: c for c in charts if c["cell"] == LATENCY}
    for metric in ("latency_p50_ms", "latency_p95_ms", "throughput_samples_per_s"):
        chart = latency[metric]
        (marker,) = chart["changepoints"]  # on the stepped machine only
        assert marker["machine"] == synthetic.zen3 and marker["commit"] == synthetic.stepped_commit
        assert marker["height"] > 100
        # Drawn where that machine's point of the planted commit was laid out, between its neighbours.
        xs = {(p["machine"], p["commit"]): p["x"] for p in chart["points"]}
        assert marker["x"] == pytest.approx(xs[(synthetic.zen3, synthetic.stepped_commit)], abs=1.0)
        assert xs[(synthetic.zen3, commit_id(STEP_AT - 1))] < marker["x"] < xs[(synthetic.zen3, commit_id(STEP_AT + 1))]
    # Charts of metrics that did not move carry no marker.
    assert not [c for c in charts if c["metric"] in ("accuracy", "peak_rss_mb", "disk_size_mb") and c["changepoints"]]
    # The change-point table lists the planted commit as a regression on the stepped machine, and nothing else.
    assert trendcheck["steps"] and all(r["commit"] == synthetic.stepped_commit and r["machine"] == synthetic.zen3
                                       for r in trendcheck["steps"])
    assert all("regression" in r["cells"] for r in trendcheck["steps"])
    # The filter: one cell by its name, the cells with a change point, then all again.
    cells = {c["cell"] for c in charts}
    stepped = {c["cell"] for c in charts if c["changepoints"]}
    assert trendcheck["filter"] == {"byName": 1, "withChanges": len(stepped), "all": len(cells)}


def test_the_run_report_links_to_the_trend_page(tmp_path, synthetic):
    from quantbench.reports import write_reports

    linked = write_reports(synthetic.run_files[-1], tmp_path / "a", model_cards=False,
                           trend_page="history/index.html")["index.html"].read_text()
    assert '<a href="history/index.html">' in linked
    plain = write_reports(synthetic.run_files[-1], tmp_path / "b", model_cards=False)["index.html"].read_text()
    assert "history/index.html" not in plain and 'class="trend-link"' not in plain


def test_a_sweep_with_history_and_a_report_dir_writes_the_page_and_the_link(pytester, tmp_path, synthetic,
                                                                             monkeypatch):
    """The plugin's end-of-session step: the trend page of the run's cells beside the report, which links to it."""
    from quantbench.plugin import history as plugin_history
    from quantbench.plugin.state import state

    monkeypatch.delenv("QUANTBENCH_HISTORY", raising=False)
    out = synthetic.run_files[-1]
    config = pytester.parseconfig("--history", synthetic.db, "--benchmark-json", str(out),
                                  "--report-dir", str(tmp_path / "report"))
    state(config).output_path = str(out)
    session, lines = SimpleNamespace(config=config, exitstatus=0), []
    link = plugin_history.trend_page(session, str(tmp_path / "report"), lines.append)
    assert link == "history/index.html" and session.exitstatus == 0
    page = tmp_path / "report" / "history" / "index.html"
    assert lines == [f"quantbench history: wrote the trend page of this run's cells to {page}"]
    text = page.read_text()
    assert '<a href="../index.html">' in text and LATENCY in text
    # A store that fails costs the run only the link: one line, no exit status.
    broken = tmp_path / "broken.sqlite"
    broken.write_text("not a database")
    config = pytester.parseconfig("--history", str(broken), "--benchmark-json", str(out))
    state(config).output_path = str(out)
    session, lines = SimpleNamespace(config=config, exitstatus=0), []
    assert plugin_history.trend_page(session, str(tmp_path / "report2"), lines.append) is None
    (line,) = lines
    assert line.startswith("quantbench history: trend page not written: ") and session.exitstatus == 0
    # Without --history there is no page and no line.
    config = pytester.parseconfig("--benchmark-json", str(out))
    state(config).output_path = str(out)
    lines = []
    assert plugin_history.trend_page(SimpleNamespace(config=config, exitstatus=0), str(tmp_path), lines.append) is None
    assert lines == []


def test_an_empty_history_still_writes_a_page(tmp_path):
    page = write_trend_page(str(tmp_path / "empty.sqlite"), tmp_path / "out")
    text = page.read_text()
    assert "No stored values for these metrics." in text and "No change point in any series" in text


def test_a_creep_is_stated_as_the_current_trend(tmp_path):
    from tests.unit.history.factory import run_on

    db = str(tmp_path / "creep.sqlite")
    with open_store(db) as store:
        for i in range(COMMITS):  # 2 % slower every commit
            store.add(run_on(seed=i, commit=commit_id(i), commit_time=f"2026-11-{i + 1:02d}T10:00:00+00:00",
                             latency_scale=1.02 ** i))
        history = build(store, metrics=["latency_p50_ms"], cells=[LATENCY])
    (series,) = history.series
    assert series.trend is not None and series.trend.significant and series.trend_verdict == "regression"
    assert series.trend_text().startswith("rising +") and "/commit since " in series.trend_text()
    text = write_trend_page(db, tmp_path / "page", metrics=["latency_p50_ms"], cells=[LATENCY]).read_text()
    assert 'id="trends-table"' in text and '<line class="trendline"' in text
    row = re.search(r'<table class="sortable" id="trends-table">.*?</table>', text, re.S).group(0)
    assert LATENCY in row and "latency_p50_ms" in row and "regression" in row


def test_names_from_runs_cannot_inject_markup(tmp_path):
    from tests.unit.history.factory import run_on

    db = str(tmp_path / "h.sqlite")
    with open_store(db) as store:
        store.add(run_on(seed=1, models=("<b>bold</b>",), with_accuracy=False))
    text = write_trend_page(db, tmp_path / "page").read_text()
    assert "&lt;b&gt;bold&lt;/b&gt;" in text and "<b>bold</b>" not in text
    assert "\\u003cb\\u003ebold" in text  # and inside the page's JSON, as the run report escapes it


def test_the_end_of_a_sweep_adds_the_run_then_writes_the_page_and_the_linked_report(pytester, tmp_path, synthetic,
                                                                                     monkeypatch, capsys):
    from quantbench.plugin.outputs import pytest_sessionfinish
    from quantbench.plugin.state import state

    monkeypatch.delenv("QUANTBENCH_HISTORY", raising=False)
    db, out, report = str(tmp_path / "h.sqlite"), synthetic.run_files[0], tmp_path / "report"
    config = pytester.parseconfig("--history", db, "--benchmark-json", str(out), "--report-dir", str(report))
    state(config).output_path = str(out)
    session = SimpleNamespace(config=config, exitstatus=0)
    pytest_sessionfinish(session, 0)
    printed = capsys.readouterr().out
    assert "quantbench history: added run 1 to" in printed and "wrote the trend page of this run's cells" in printed
    assert '<a href="history/index.html">' in (report / "index.html").read_text()
    assert LATENCY in (report / "history" / "index.html").read_text() and session.exitstatus == 0


def test_the_same_history_on_either_backend(db_url, tmp_path):
    """SQLite and a real PostgreSQL server (tests/unit/history/conftest.py) give the same series and page."""
    synthetic = build_history(tmp_path, db=db_url)
    with open_store(db_url) as store:
        history = build(store, metrics=["latency_p50_ms"], cells=[LATENCY])
    assert history.commits == tuple(commit_id(i) for i in range(COMMITS))
    assert [(s.machine, [st.commit for st in s.steps]) for s in history.series] == [
        (synthetic.zen3, [synthetic.stepped_commit]), (synthetic.avx512, [])]
    assert 'id="steps-table"' in write_trend_page(db_url, tmp_path / "page", metrics=["latency_p50_ms"]).read_text()

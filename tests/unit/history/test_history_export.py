"""``quantbench history export``: a stored run as Bencher Metric Format and as github-action-benchmark's custom JSON,
each checked the way its own tool reads it.

* **BMF** against the JSON Schema Bencher publishes (https://bencher.dev/bmf.json, draft-07; copied below) with
  ``jsonschema``, and against the limits its reference states (a measure's slug at most 64 characters, a
  benchmark's name at most 1024), with the documented example passing the same checks.
* **github-action-benchmark** (benchmark-action/github-action-benchmark, ``src/extract.ts``): for the
  ``customSmallerIsBetter``/``customBiggerIsBetter`` tools, ``extractCustomBenchmarkResult`` parses the file with
  the zod schema ``z.array(z.object({name: z.coerce.string(), value: z.coerce.number(), range:
  z.coerce.string().optional(), unit: z.coerce.string(), extra: z.coerce.string().optional()}))`` (zod 4: a
  number must be finite), ``extractResult`` refuses a file with no entries, and ``write.ts`` matches a result
  to the previous one by ``name``. :func:`check_custom_benchmark` replicates those checks, stricter where
  coercion would hide a mistake (a missing name would become the string "undefined"), and is itself checked on
  the README's example and on files it must refuse.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest

from quantbench import cli
from quantbench.results import METRICS, metric_spec
from tests.unit.history.synthetic_history import COMMITS, build_history, commit_id

pytest.importorskip("sqlalchemy", reason="the history extra is not installed (pip install 'quantbench[history]')")

from quantbench.history import open_store  # noqa: E402
from quantbench.history.export import direction_paths, export, measure_slug  # noqa: E402

#: https://bencher.dev/bmf.json, as published (Bencher's BMF reference page shows the same).
BMF_SCHEMA = {
    "$id": "https://bencher.dev/bmf.json",
    "$schema": "http://json-schema.org/draft-07/schema",
    "type": "object",
    "patternProperties": {
        ".+": {
            "type": "object",
            "patternProperties": {
                ".+": {
                    "type": "object",
                    "properties": {"value": {"type": "number"}, "lower_value": {"type": "number"},
                                   "upper_value": {"type": "number"}},
                    "required": ["value"],
                }
            },
        }
    },
}
#: The example on Bencher's BMF reference page.
BMF_EXAMPLE = {
    "benchmark_name": {"latency": {"value": 88.0, "lower_value": 87.42, "upper_value": 88.88},
                       "throughput": {"value": 5.55, "lower_value": 3.14, "upper_value": 6.30}},
    "/bin/sh -c ./my_build_script.sh": {"build-time": {"value": 87.0}},
    "my_binary": {"file-size": {"value": 42.0}},
}
#: The example in github-action-benchmark's README (custom tools).
GAB_EXAMPLE = [
    {"name": "My Custom Smaller Is Better Benchmark - CPU Load", "unit": "Percent", "value": 50},
    {"name": "My Custom Smaller Is Better Benchmark - Memory Used", "unit": "Megabytes", "value": 100, "range": "3",
     "extra": "Value for Tooltip: 25\nOptional Num #2: 100\nAnything Else!"},
]
SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_bmf(data) -> None:
    """Bencher's schema, then the limits of its reference (and our slugs' shape)."""
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(data, BMF_SCHEMA, cls=jsonschema.Draft7Validator)
    assert isinstance(data, dict) and data
    for benchmark, measures in data.items():
        assert isinstance(benchmark, str) and 0 < len(benchmark) <= 1024
        assert isinstance(measures, dict) and measures
        for measure, metric in measures.items():
            assert 0 < len(measure) <= 64, measure
            assert set(metric) <= {"value", "lower_value", "upper_value"} and _number(metric["value"])
            if "lower_value" in metric or "upper_value" in metric:
                assert _number(metric["lower_value"]) and _number(metric["upper_value"])
                assert metric["lower_value"] <= metric["upper_value"]


def check_custom_benchmark(text: str) -> list[dict]:
    """github-action-benchmark's checks on a customSmallerIsBetter/customBiggerIsBetter file (see the docstring)."""
    entries = json.loads(text)
    assert isinstance(entries, list), "must be a JSON array of BenchmarkResult entries"
    assert entries, "No benchmark result was found"
    for entry in entries:
        assert isinstance(entry, dict)
        assert isinstance(entry.get("name"), str) and entry["name"]
        assert isinstance(entry.get("unit"), str)
        assert _number(entry.get("value")), entry
        for optional in ("range", "extra"):
            assert optional not in entry or isinstance(entry[optional], str), entry
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), "names must be unique: the action finds the previous result by name"
    return entries


def test_the_checkers_pass_the_documented_examples_and_refuse_broken_files():
    check_bmf(BMF_EXAMPLE)
    check_custom_benchmark(json.dumps(GAB_EXAMPLE))
    jsonschema = pytest.importorskip("jsonschema")
    with pytest.raises(jsonschema.ValidationError):
        check_bmf({"bench": {"latency": {"lower_value": 1.0}}})
    for broken in ([], {"name": "x", "unit": "ms", "value": 1}, [{"unit": "ms", "value": 1}],
                   [{"name": "x", "unit": "ms", "value": "fast"}],
                   [{"name": "x", "unit": "ms", "value": 1, "range": 3}],
                   [{"name": "x", "unit": "ms", "value": 1}, {"name": "x", "unit": "ms", "value": 2}]):
        with pytest.raises(AssertionError):
            check_custom_benchmark(json.dumps(broken))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return build_history(tmp_path_factory.mktemp("history"))


def _stored(db: str, run_id: int) -> dict[tuple[str, str], object]:
    from quantbench.history.ingest import values_of

    with open_store(db) as store:
        return {(v.cell, v.metric): v for v in values_of(store.load_run(run_id).records)}


def test_bmf_of_the_latest_run(synthetic, tmp_path):
    with open_store(synthetic.db) as store:
        latest = store.runs()[-1]
        done = export(store, "bmf", tmp_path / "bmf.json")
    assert done.run_id == latest.id and done.commit == commit_id(COMMITS - 1) and done.machine == latest.machine_id
    data = json.loads((tmp_path / "bmf.json").read_text())
    check_bmf(data)
    stored = _stored(synthetic.db, latest.id)
    assert done.entries == len(stored) and done.benchmarks == len(data) == len({cell for cell, _ in stored})
    for (cell, metric), v in stored.items():
        measure = data[cell][measure_slug(metric)]
        assert measure["value"] == v.value
        if v.ci_low is not None:  # the stored 95 % interval is the bounds
            assert (measure["lower_value"], measure["upper_value"]) == (v.ci_low, v.ci_high)
        elif v.se is None:
            assert set(measure) == {"value"}
    assert all(SLUG.match(measure) for measures in data.values() for measure in measures)
    accuracy = data["test_accuracy[minilm-tweets-fp32-pytorch-cpu]"]
    assert "latency-p50-ms" in data["test_latency[minilm-tweets-fp32-pytorch-cpu-bs1-seq64]"] and "accuracy" in accuracy


def test_the_command_offers_every_format():
    from quantbench.history.commands import EXPORT_FORMATS
    from quantbench.history.export import FORMATS

    assert EXPORT_FORMATS == FORMATS


def test_measure_slugs():
    assert measure_slug("latency_p50_ms") == "latency-p50-ms"
    assert measure_slug("lm_eval.arc_easy.acc_norm.none") == "lm-eval-arc-easy-acc-norm-none"
    long = measure_slug("lm_eval." + "very_long_task_name_" * 5 + ".acc")
    assert len(long) <= 64 and SLUG.match(long)
    assert all(SLUG.match(measure_slug(name)) and len(measure_slug(name)) <= 64 for name in METRICS)
    assert len({measure_slug(name) for name in METRICS}) == len(METRICS)


def test_github_action_benchmark_of_a_chosen_run(synthetic, tmp_path):
    with open_store(synthetic.db) as store:
        first = store.runs(machine=synthetic.avx512)[0]
        done = export(store, "github-action-benchmark", tmp_path / "gab.json", run_id=first.id)
    paths = direction_paths(tmp_path / "gab.json")
    assert done.paths == (paths["smaller"], paths["bigger"]) and done.run_id == first.id
    assert [p.name for p in done.paths] == ["gab-smaller.json", "gab-bigger.json"]
    smaller = check_custom_benchmark(paths["smaller"].read_text())
    bigger = check_custom_benchmark(paths["bigger"].read_text())
    stored = _stored(synthetic.db, first.id)
    assert len(smaller) + len(bigger) == len(stored) == done.entries
    # Each file holds one direction, as METRICS says; the name is the run report's "test[cell id] metric".
    for entries, better in ((smaller, "lower"), (bigger, "higher")):
        for entry in entries:
            cell, metric = entry["name"].rsplit(" ", 1)
            assert metric_spec(metric).better == better and entry["unit"] == metric_spec(metric).unit
            assert entry["value"] == stored[(cell, metric)].value
            assert f"machine {synthetic.avx512}" in entry["extra"] and commit_id(0)[:7] in entry["extra"]
    ranges = [e["range"] for e in smaller + bigger if "range" in e]
    assert ranges and all(r.startswith(("± ", "95% CI [")) for r in ranges)
    # A "± x" range is one the action's extractRangeInfo parses (it rescales it with the unit).
    assert all(math.isfinite(float(re.match(r"(\+-|±)\s*(\d.*)", r).group(2))) for r in ranges if r.startswith("±"))


def test_the_run_reports_names_are_kept(synthetic, tmp_path):
    """A workflow can switch from the run report's github-action-benchmark files to the store's export."""
    from quantbench.reports.export import github_action_benchmark
    from quantbench.reports.model import analyse
    from quantbench.results import load_run

    with open_store(synthetic.db) as store:
        last = store.runs()[-1]
        export(store, "github-action-benchmark", tmp_path / "gab.json", run_id=last.id)
    report = github_action_benchmark(analyse(load_run(last.source)))  # the file the run was added from
    for direction, path in direction_paths(tmp_path / "gab.json").items():
        ours = {e["name"] for e in json.loads(path.read_text())}
        theirs = {e["name"] for e in report[direction]}
        assert ours and ours <= theirs and theirs - ours <= {n for n in theirs if n.endswith(" speedup_vs_fp32")}


def test_the_commands_and_their_errors(synthetic, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("QUANTBENCH_HISTORY", raising=False)
    out = tmp_path / "bmf.json"
    assert cli.main(["history", "export", "--db", synthetic.db, "--format", "bmf", "--latest", "--machine",
                     synthetic.avx512, "--metric", "latency_*", "-o", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"wrote {out}: run ") and f"machine {synthetic.avx512}" in line
    data = json.loads(out.read_text())
    check_bmf(data)
    assert {m for measures in data.values() for m in measures} == {"latency-p50-ms", "latency-p90-ms", "latency-p95-ms",
                                                                   "latency-p99-ms", "latency-mean-ms"}
    assert cli.main(["history", "export", "--db", synthetic.db, "--format", "bmf", "--run", "1", "--machine", "x",
                     "-o", str(out)]) == 2
    assert "--machine and --branch choose the latest run" in capsys.readouterr().err
    assert cli.main(["history", "export", "--db", str(tmp_path / "empty.sqlite"), "--format", "github-action-benchmark",
                     "-o", str(tmp_path / "g.json")]) == 2
    err = capsys.readouterr().err
    assert "no stored run to export (add runs with: quantbench history add RUN.json)" in err
    assert len(err.splitlines()) == 1
    assert cli.main(["history", "export", "--db", synthetic.db, "--format", "bmf", "--run", "999", "-o", str(out)]) == 2
    assert "no run with id 999" in capsys.readouterr().err


def test_the_readme_commands_from_a_fresh_clone(tmp_path, capsys, monkeypatch):
    """README's history section on the runs shipped in docs/runs/, in a folder with nothing else."""
    monkeypatch.delenv("QUANTBENCH_HISTORY", raising=False)
    shipped = Path(__file__).resolve().parents[3] / "docs" / "runs"
    shutil.copytree(shipped, tmp_path / "docs" / "runs")
    monkeypatch.chdir(tmp_path)
    runs = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "docs" / "runs").glob("*.json"))
    assert cli.main(["history", "add", *runs]) == 0
    assert cli.main(["history", "report", "-o", "reports/history"]) == 0
    assert cli.main(["history", "export", "--format", "bmf", "--latest", "-o", "reports/bmf.json"]) == 0
    assert cli.main(["history", "export", "--format", "github-action-benchmark", "--latest",
                     "-o", "reports/github-action-benchmark.json"]) == 0
    out = capsys.readouterr().out
    assert "wrote reports/history/index.html: 40 cells" in out and "on 2 machine(s) over 1 commit(s)" in out
    check_bmf(json.loads(Path("reports/bmf.json").read_text()))
    for name in ("smaller", "bigger"):
        check_custom_benchmark(Path(f"reports/github-action-benchmark-{name}.json").read_text())

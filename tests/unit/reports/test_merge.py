"""`quantbench merge`: shards and machines into one run, nothing lost, duplicates caught."""

from __future__ import annotations

import copy
import json

import pytest

from quantbench import cli
from quantbench.errors import QuantbenchError
from quantbench.reports.merge import merge_runs
from quantbench.results import load_run
from tests.run_factory import DEFAULT_MACHINE, make_run


@pytest.fixture(autouse=True)
def only_report_commands(monkeypatch):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("quantbench.reports.commands",))


def shards():
    a = make_run(variants=(("fp32", "pytorch"), ("dynamic_int8", "pytorch")),
                 failed=[{"test": "test_latency", "cell_id": "x", "params": {}, "reason": "boom"}])
    b = make_run(seed=3, variants=(("fp32", "onnxruntime"), ("static_int8", "onnxruntime")),
                 failed=[{"test": "test_latency", "cell_id": "x", "params": {}, "reason": "boom"}],
                 skipped=[{"test": "test_latency", "cell_id": "y", "params": {}, "reason": "no CUDA"}])
    b["machine_info"]["cpu"]["hz_actual_friendly"] = "1.9 GHz"  # same machine, other momentary clock
    return a, b


def dump(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def test_merge_of_shards_is_the_union(tmp_path):
    a, b = shards()
    out = tmp_path / "merged.json"
    assert cli.main(["merge", dump(tmp_path, "a.json", a), dump(tmp_path, "b.json", b), "-o", str(out)]) == 0
    merged = json.loads(out.read_text())
    assert merged["benchmarks"] == a["benchmarks"] + b["benchmarks"]  # every benchmark, byte for byte
    assert merged["machine_info"] == a["machine_info"] and merged["commit_info"] == a["commit_info"]
    assert merged["quantbench"]["failed"] == a["quantbench"]["failed"]  # the repeat is one entry
    assert merged["quantbench"]["skipped"] == b["quantbench"]["skipped"]
    assert [m["kept"] for m in merged["quantbench"]["merged_from"]] == [len(a["benchmarks"]), len(b["benchmarks"])]
    run = load_run(out)  # still a valid run file
    assert len(run.records) == len(a["benchmarks"]) + len(b["benchmarks"])


def test_duplicates_fail_unless_deduped(tmp_path, capsys):
    a, _ = shards()
    again = copy.deepcopy(a)
    paths = [dump(tmp_path, "a.json", a), dump(tmp_path, "a2.json", again)]
    assert cli.main(["merge", *paths, "-o", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    assert "bench/test_performance.py::test_latency[" in err and "--dedupe" in err and "a2.json" in err
    assert cli.main(["merge", *paths, "-o", str(tmp_path / "m.json"), "--dedupe"]) == 0
    merged = json.loads((tmp_path / "m.json").read_text())
    assert merged["benchmarks"] == a["benchmarks"]
    assert "dropped" in capsys.readouterr().out


def test_same_cells_from_two_machines_are_both_kept_with_their_machine():
    a = make_run(batch_sizes=(1,))
    other = copy.deepcopy(DEFAULT_MACHINE)
    other["node"], other["quantbench"]["gpu"] = "gpu-box", {"name": "NVIDIA L4"}
    b = make_run(batch_sizes=(1,), machine=other, seed=5)
    merged, dropped = merge_runs([("a", a), ("b", b)])
    assert dropped == 0 and len(merged["benchmarks"]) == len(a["benchmarks"]) * 2
    nodes = [bench["extra_info"]["machine"]["node"] for bench in merged["benchmarks"]]
    assert nodes == ["ci-runner-1"] * len(a["benchmarks"]) + ["gpu-box"] * len(b["benchmarks"])
    assert merged["machine_info"]["node"] == "ci-runner-1"
    # Merging the merged file again with one of its inputs finds the duplicates by per-benchmark machine.
    with pytest.raises(QuantbenchError, match="appears in"):
        merge_runs([("m", merged), ("b", b)])


def test_invalid_input_names_the_file():
    with pytest.raises(QuantbenchError, match="bad.json"):
        merge_runs([("bad.json", {"nope": 1})])

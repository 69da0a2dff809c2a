"""`quantbench compare`: cells align across machines, ratios are against the first run."""

from __future__ import annotations

import copy
import json

import pytest

from quantbench import cli
from quantbench.reports.compare import align, labels_for, machine_label
from quantbench.results import parse_run
from tests.run_factory import DEFAULT_MACHINE, make_run

SMALL = dict(batch_sizes=(1, 8), variants=(("fp32", "pytorch"), ("dynamic_int8", "pytorch")))


@pytest.fixture(autouse=True)
def only_report_commands(monkeypatch):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("quantbench.reports.commands",))


def machine(node, threads, gpu=None):
    m = copy.deepcopy(DEFAULT_MACHINE)
    m["node"], m["quantbench"]["torch_threads"], m["quantbench"]["gpu"] = node, threads, gpu
    return m


def dump(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def p50s(data):
    return {b["name"]: b["extra_info"]["latency_ms"]["p50"] for b in data["benchmarks"] if "latency_ms" in b["extra_info"]}


def test_side_by_side_with_ratios(tmp_path):
    slow = make_run(seed=1, machine=machine("slow-box", 1), latency_scale=2.0, **SMALL)
    fast = make_run(seed=2, machine=machine("fast-box", 2), **SMALL)
    out = tmp_path / "cmp"
    assert cli.main(["compare", str(dump(tmp_path, "a.json", slow)), str(dump(tmp_path, "b.json", fast)),
                     "-o", str(out)]) == 0
    data = json.loads((out / "compare.json").read_text())
    assert [r["label"] for r in data["runs"]] == ["slow-box · Test CPU @ 2.0GHz · 1 thread",
                                                  "fast-box · Test CPU @ 2.0GHz · 2 threads"]
    a, b = p50s(slow), p50s(fast)
    cells = {c["label"]: c for c in data["cells"]}
    assert len(cells) == len(slow["benchmarks"])  # every cell aligned, none duplicated
    cell = cells["dynamic_int8/pytorch bs8 seq64 minilm latency"]
    name = "test_latency[minilm-tweets-dynamic_int8-pytorch-cpu-bs8-seq64]"
    assert cell["values"]["latency_p50_ms"] == pytest.approx([a[name], b[name]])
    assert cell["ratios"]["latency_p50_ms"] == pytest.approx([1.0, b[name] / a[name]])
    # latency_scale=2 on the first machine: the second is about twice as fast at bs8
    # (the factory adds a fixed 2 ms, so not exactly 0.5).
    assert 0.5 < cell["ratios"]["latency_p50_ms"][1] < 0.6
    html = (out / "index.html").read_text()
    assert "slow-box" in html and "fast-box" in html and f"{b[name] / a[name]:.2f}×" in html
    assert '<svg class="chart" data-chart="compare-latency_p50_ms"' in html


def test_cpu_and_cuda_runs_align_and_missing_cells_are_kept(tmp_path):
    cpu = make_run(machine=machine("cpu-box", 2), **SMALL)
    cuda = make_run(machine=machine("gpu-box", 2, gpu={"name": "NVIDIA L4"}), devices=("cuda",),
                    batch_sizes=(1, 8, 32), variants=SMALL["variants"])
    runs = [parse_run(cpu), parse_run(cuda)]
    cells = align(runs)
    both = [c for c in cells if all(c.records)]
    only_cuda = [c for c in cells if c.records[0] is None]
    assert len(both) == len(cpu["benchmarks"])  # cpu cell aligned with its cuda twin
    assert {c.records[1].params["batch_size"] for c in only_cuda} == {32}
    assert "NVIDIA L4" in machine_label(runs[1])
    out = tmp_path / "cmp"
    assert cli.main(["compare", str(dump(tmp_path, "a.json", cpu)), str(dump(tmp_path, "b.json", cuda)),
                     "-o", str(out), "--label", "laptop", "--label", "cloud"]) == 0
    data = json.loads((out / "compare.json").read_text())
    assert [r["label"] for r in data["runs"]] == ["laptop", "cloud"]
    missing = [c for c in data["cells"] if c["present"] == [False, True]]
    assert len(missing) == 2 and all(c["values"]["latency_p50_ms"][0] is None for c in missing)
    assert "missing" in (out / "index.html").read_text()


def test_run_with_two_devices_keys_cells_by_device():
    both = make_run(devices=("cpu", "cuda"), **SMALL)
    cpu = make_run(**SMALL)
    cells = align([parse_run(cpu), parse_run(both)])
    assert len(cells) == len(both["benchmarks"])
    assert sum(1 for c in cells if all(c.records)) == len(cpu["benchmarks"])


def test_labels_must_match_runs():
    runs = [parse_run(make_run(**SMALL))] * 2
    assert labels_for(runs, None) == ["ci-runner-1 · Test CPU @ 2.0GHz · 2 threads",
                                      "ci-runner-1 · Test CPU @ 2.0GHz · 2 threads (2)"]
    with pytest.raises(Exception, match="--label given 1 times for 2 runs"):
        labels_for(runs, ["one"])

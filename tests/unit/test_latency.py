"""Round planning and the statistics computed from raw rounds."""

from __future__ import annotations

import numpy as np
import pytest

from quantbench.measures.latency import plan_rounds, summarize
from quantbench.suite import MeasureSettings


def test_percentiles_and_throughput_come_from_the_raw_rounds():
    samples = [0.010 + 0.001 * i for i in range(11)]  # 10..20 ms
    out = summarize(samples, batch_size=8, seq_len=64)
    assert out["latency_ms"]["p50"] == pytest.approx(15.0)
    assert out["latency_ms"]["p90"] == pytest.approx(np.percentile(np.array(samples) * 1000, 90))
    assert out["latency_ms"]["min"] == pytest.approx(10.0) and out["latency_ms"]["max"] == pytest.approx(20.0)
    assert out["throughput_samples_per_s"] == pytest.approx(8 / 0.015, rel=1e-4)
    assert out["throughput_tokens_per_s"] == pytest.approx(8 * 64 / 0.015, rel=1e-4)
    assert out["rounds"] == 11


@pytest.mark.parametrize(
    ("estimate", "expected"),
    [(0.001, 200),  # fast: min_time wants 1000 rounds, capped at max_rounds
     (0.05, 20),  # min_time 1 s / 50 ms
     (2.0, 10)],  # slow: min_rounds wins over max_time
)
def test_plan_rounds(estimate, expected):
    settings = MeasureSettings(min_rounds=10, max_rounds=200, min_time_s=1.0, max_time_s=10.0)
    assert plan_rounds(estimate, settings) == expected

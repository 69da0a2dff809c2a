"""Uncertainty and batch-sensitivity figures added to synthetic runs (tests/run_factory.py), in the
shape the quality records carry them: ``M_ci95: [lo, hi]``, ``M_se``, ``*_at_bs<N>`` figures and the
``quality_scoring`` / ``zero_shot_at_floor`` flags. The numbers are hand-made, not simulated: a test
states the ones it relies on.
"""

from __future__ import annotations

from typing import Any

#: Half-widths of the 95 % intervals given to shares (accuracy-like and fairness figures).
SHARE_HALF_WIDTH = 0.02
#: Relative standard error given to token-averaged figures (perplexity...).
TOKEN_REL_SE = 0.03
SHARES = ("accuracy", "balanced_accuracy", "f1_macro", "agreement_with_fp32", "dp_difference", "eo_difference",
          "flip_rate", "top1_agreement")
TOKEN_FIGURES = ("perplexity", "bits_per_byte")


def with_intervals(run: dict[str, Any], *, scoring: str = "each text alone (batch 1)") -> dict[str, Any]:
    """Every quality record gets intervals on its shares and standard errors on token figures."""
    for bench in run["benchmarks"]:
        extra = bench["extra_info"]
        if not bench["name"].startswith(("test_accuracy", "test_fairness", "test_perplexity")):
            continue
        extra["quality_scoring"] = scoring
        for name in SHARES:
            if isinstance(extra.get(name), (int, float)):
                v = extra[name]
                extra[f"{name}_ci95"] = [max(0.0, v - SHARE_HALF_WIDTH), min(1.0, v + SHARE_HALF_WIDTH)]
        for name in TOKEN_FIGURES:
            if isinstance(extra.get(name), (int, float)):
                se = extra[name] * TOKEN_REL_SE
                extra[f"{name}_se"] = se
                extra[f"{name}_ci95"] = [extra[name] - 1.96 * se, extra[name] + 1.96 * se]
        if isinstance(extra.get("accuracy_delta_pts"), (int, float)):
            d = extra["accuracy_delta_pts"]
            extra["accuracy_delta_pts_ci95"] = [d - 1.5, d + 1.5]
        if isinstance(extra.get("kl_divergence"), (int, float)):
            kl = extra["kl_divergence"]
            extra["kl_divergence_se"] = kl * 0.05
            extra["kl_divergence_ci95"] = [kl * 0.9, kl * 1.1]
    return run


def set_batch_figures(run: dict[str, Any], *, quant: str, backend: str | None = None, test: str,
                      **figures: Any) -> dict[str, Any]:
    """Put batch-sensitivity figures (and anything else) on one variant's quality record."""
    hits = [b for b in run["benchmarks"] if b["params"]["quant"] == quant and b["name"].startswith(test)
            and (backend is None or b["params"]["backend"] == backend)]
    assert hits, (quant, backend, test)
    for bench in hits:
        bench["extra_info"].update(figures)
    return run

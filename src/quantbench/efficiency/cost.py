"""What a cell's measured throughput costs at a price per machine-hour.

Cost per million inferences (classification) = price per second / samples per second x 10^6;
cost per million output tokens (generation) = price per second / total tokens per second x 10^6,
with total tokens/s = batch x new tokens / median generate latency (prefill included: it is
paid for). Both depend on the batch size, so each cell has its own.
"""

from __future__ import annotations

from typing import Any

from quantbench.errors import QuantbenchError


def parse_price(value: Any, *, where: str) -> float:
    try:
        price = float(value)
    except (TypeError, ValueError):
        raise QuantbenchError(f"{where}: {value!r} is not a price in USD per hour") from None
    if not price > 0:
        raise QuantbenchError(f"{where}: the price per hour must be positive, got {value!r}")
    return price


def cost_figures(extra_info: dict[str, Any], price_per_hour: float | None) -> dict[str, Any]:
    if not price_per_hour:
        return {}
    per_second = price_per_hour / 3600
    out: dict[str, Any] = {"price_per_hour": price_per_hour}
    if extra_info.get("total_tokens_per_s"):
        out["cost_per_million_output_tokens"] = round(per_second / float(extra_info["total_tokens_per_s"]) * 1e6, 6)
    elif extra_info.get("throughput_samples_per_s"):
        out["cost_per_million_inferences"] = round(per_second / float(extra_info["throughput_samples_per_s"]) * 1e6, 6)
    return out

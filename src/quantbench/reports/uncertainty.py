"""A quality figure with its uncertainty, as text: ``0.884 [0.862, 0.903]`` or ``285.8 ± 9.1``.

A figure whose record states a standard error (``M_se``: perplexity, KL, Δp, PPL ratio...,
averaged over tokens) is written as llama.cpp's perplexity tool prints it, value ± one standard
error; any other figure with an interval (``M_ci95``) as value [lo, hi], a 95 % interval. Both are
rounded to two significant digits of the uncertainty, and the value to the same decimal place, so
the digits shown are the digits that mean something. Without either, the value alone.
"""

from __future__ import annotations

import math

from quantbench.reports.charts import fmt

#: Digits after the point are capped: beyond this an uncertainty is shown as 0.
MAX_DECIMALS = 6


def decimals_for(error: float) -> int | None:
    """Decimal places that give ``error`` two significant digits (None for 0 or not finite)."""
    if not math.isfinite(error) or error <= 0:
        return None
    return min(MAX_DECIMALS, max(0, 1 - math.floor(math.log10(error))))


def signed(name: str) -> bool:
    """Changes against a reference (Δ accuracy, ΔPPL, Δp, ln ratio) carry their sign."""
    return ("delta" in name and not name.endswith("_rms")) or name == "ln_ppl_ratio"


def _num(value: float, places: int | None, sign: bool) -> str:
    if places is None:
        text = fmt(value)
        return f"+{text}" if sign and value > 0 else text
    return format(value, f"{'+' if sign else ''},.{places}f")  # grouped like charts.fmt: 1,250


def _parts(name: str, value: float, interval: tuple[float, float] | None,
           std_error: float | None) -> tuple[str, str | None]:
    sign = signed(name)
    if std_error is not None:
        places = decimals_for(std_error)
        return _num(value, places, sign), f"± {_num(std_error, places, False)}"
    if interval is not None:
        lo, hi = interval
        places = decimals_for((hi - lo) / 2)
        return _num(value, places, sign), f"[{_num(lo, places, sign)}, {_num(hi, places, sign)}]"
    return _num(value, None, sign), None


def fmt_figure(name: str, value: float | None, interval: tuple[float, float] | None = None,
               std_error: float | None = None) -> str:
    """``value ± se`` when a standard error is stated, else ``value [lo, hi]``, else the value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    text, uncertainty = _parts(name, value, interval, std_error)
    return f"{text} {uncertainty}" if uncertainty else text


def fmt_like(name: str, value: float | None, interval: tuple[float, float] | None = None,
             std_error: float | None = None) -> str:
    """``value`` alone, rounded as a figure with this uncertainty would be (a column of figures
    where only some carry one keeps one precision)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if std_error is not None:
        return _num(value, decimals_for(std_error), signed(name))
    if interval is not None:
        return _num(value, decimals_for((interval[1] - interval[0]) / 2), signed(name))
    return _num(value, None, signed(name))


def fmt_uncertainty(name: str, value: float, interval: tuple[float, float] | None = None,
                    std_error: float | None = None) -> str | None:
    """The uncertainty alone, "± 9.1" or "95% CI [0.862, 0.903]"; None without one."""
    uncertainty = _parts(name, value, interval, std_error)[1]
    if uncertainty is None or std_error is not None:
        return uncertainty
    return f"95% CI {uncertainty}"


def interval_verdict(interval: tuple[float, float] | None, *, zero: float = 0.0) -> str:
    """For a change: does its 95 % interval contain no change?"""
    if interval is None:
        return "no interval"
    return "no significant change" if interval[0] <= zero <= interval[1] else "significant"

"""What a Server point's verdict judges: LoadGen's early stopping, not the empirical percentile.

LoadGen calls a Server point VALID at "p99 <= X ms" when, with ``t`` of its ``n`` queries over X ms,
it can say at 99 % confidence that at most 1 % of all queries would be: the binomial tail
P(Binomial(n, 0.01) <= t) must be at most 1 - 0.99 (``early_stopping.cc``). That is an upper
confidence bound on the share of queries over the bound, i.e. on the percentile, and with few
queries it is far stricter than the empirical p99: 459 queries pass only with no query over the bound
(0.99^459 <= 0.01), 662 with one. So the record, the report and the cards name the judged figure
as such, and each point records its share over the bound with its upper bound.
"""

from __future__ import annotations

from scipy import stats

#: LoadGen's early-stopping confidence.
CONFIDENCE = 0.99


def judged_label(percentile: float) -> str:
    """``p99 upper bound (LoadGen early stopping, 99 % confidence)``: how a Server verdict judges."""
    return f"p{percentile * 100:g} upper bound (LoadGen early stopping, {CONFIDENCE:.0%} confidence)"


def share_upper_bound(queries: int, over: int, confidence: float = CONFIDENCE) -> float | None:
    """The one-sided ``confidence`` upper bound (Clopper-Pearson) of the share of queries over the
    latency bound, from ``over`` of ``queries``; None without queries."""
    if not queries or over is None or over < 0:
        return None
    if over >= queries:
        return 1.0
    return float(stats.beta.ppf(confidence, over + 1, queries - over))


def passes(queries: int, over: int, percentile: float, confidence: float = CONFIDENCE) -> bool:
    """LoadGen's early-stopping condition for a percentile bound: P(Binomial(n, 1 - p) <= t) <= 1 - c."""
    return float(stats.binom.cdf(over, queries, 1 - percentile)) <= 1 - confidence


def queries_needed(over: int, percentile: float, confidence: float = CONFIDENCE) -> int:
    """The fewest queries with which ``over`` of them over the bound still pass: 459 for none at p99,
    662 for one; 44 and 64 at p90."""
    n = over + 1
    while not passes(n, over, percentile, confidence):
        n += 1
    return n


def point_figures(queries: int | None, over: int | None, percentile: float) -> dict[str, object]:
    """What a Server point records about how it was judged."""
    if not queries or over is None:
        return {}
    bound = share_upper_bound(queries, over)
    return {"judged": judged_label(percentile),
            "over_bound_share": round(over / queries, 5),
            "over_bound_share_upper": None if bound is None else round(bound, 5),
            "over_bound_allowed": round(1 - percentile, 5)}

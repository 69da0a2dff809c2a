"""What the reports say beside an lm-eval figure: its majority floor and McNemar's test against fp32.

A ``test_lm_eval`` record holds, beside ``lm_eval.<task>.acc``, the majority rate of the documents
(``..._floor``) and whether the figure is clearly above it (``..._at_floor``), and beside its
``..._delta`` McNemar's exact p-value and the discordant documents (quantbench/lmeval/). The
table cell, the quality section and the model card show them with the figure, so an accuracy
that only reflects a lean towards the frequent answer is never read as quality.
"""

from __future__ import annotations

from typing import Any

from quantbench.results import LM_EVAL_AT_FLOOR, LM_EVAL_DISCORDANT, LM_EVAL_FLOOR, LM_EVAL_MCNEMAR_P

AT_FLOOR_TEXT = "at the majority floor"


def floor_of(extra: dict[str, Any], name: str) -> tuple[float, bool] | None:
    """(the majority rate, whether ``name`` is at it) from a record's extra_info, else None."""
    floor, flagged = extra.get(f"{name}{LM_EVAL_FLOOR}"), extra.get(f"{name}{LM_EVAL_AT_FLOOR}")
    if isinstance(floor, (int, float)) and not isinstance(floor, bool) and isinstance(flagged, bool):
        return float(floor), flagged
    return None


def floor_mark(extra: dict[str, Any], name: str) -> str:
    """" (at the majority floor 0.687)" after a flagged figure, else ""."""
    found = floor_of(extra, name)
    return f" ({AT_FLOOR_TEXT} {found[0]:.3f})" if found and found[1] else ""


def floor_text(extra: dict[str, Any], name: str) -> str:
    """The quality section's floor cell for figure ``name``."""
    found = floor_of(extra, name)
    if found is None:
        return "—"
    floor, flagged = found
    return f"{AT_FLOOR_TEXT} ({floor:.3f}): flagged, not ranked" if flagged else f"above the floor ({floor:.3f})"


def mcnemar_mark(extra: dict[str, Any], delta_name: str) -> str:
    """" · McNemar p=0.021 (+9 / −2)" after a ``..._delta`` figure that has the test, else ""."""
    p = extra.get(f"{delta_name}{LM_EVAL_MCNEMAR_P}")
    counts = extra.get(f"{delta_name}{LM_EVAL_DISCORDANT}")
    if not isinstance(p, (int, float)) or isinstance(p, bool):
        return ""
    pairs = (f" (+{counts['gained']} / −{counts['lost']})"
             if isinstance(counts, dict) and {"gained", "lost"} <= set(counts) else "")
    return f" · McNemar p={p:.2g}{pairs}"


def mark(extra: dict[str, Any], name: str) -> str:
    """Whatever the reports add after figure ``name``: the floor flag or McNemar's test."""
    return mcnemar_mark(extra, name) if name.endswith("_delta") else floor_mark(extra, name)


def floored_names(extra: dict[str, Any]) -> list[str]:
    """The figures a record gives a floor for, by name."""
    return sorted(key[: -len(LM_EVAL_AT_FLOOR)] for key in extra
                  if isinstance(key, str) and key.endswith(LM_EVAL_AT_FLOOR) and floor_of(extra, key[: -len(LM_EVAL_AT_FLOOR)]))

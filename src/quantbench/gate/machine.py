"""Is the baseline comparable? Compare the hardware and software that shape the figures.

Compared: every field of ``machine_info['quantbench']`` (cpu model, cores, RAM, gpu, torch
threads, library versions...) plus ``python_version``. Not compared: the host name (CI runners
change it every run), quantbench's own version (a new commit is the point of gating), and the
measured limits (``quantbench.limits``: measurements of the machine, not its identity; the CPU
model, threads and versions they are keyed by are compared already). The ISA (``quantbench.isa``)
is compared by its one-line label.
RAM is compared with a 2% tolerance, because the kernel reports slightly different totals on
identical machines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

#: Dotted field names left out of the comparison, and why (see module docstring).
IGNORED_FIELDS = frozenset({"quantbench.versions.quantbench"})
#: The ISA is compared through its one-line label: one line says "AVX-512 F/VNNI/BF16 -> AVX2", not
#: a line per flag (and a baseline recorded before the ISA was gives one line, not twenty).
IGNORED_PREFIXES = ("quantbench.limits.", "quantbench.isa.")
KEPT_FIELDS = frozenset({"quantbench.isa.label"})
TOP_LEVEL_FIELDS = ("python_version",)
FLOAT_TOLERANCE = 0.02
ABSENT = "<absent>"


@dataclass(frozen=True)
class MachineDifference:
    field: str
    baseline: Any
    current: Any

    def describe(self) -> str:
        return f"{self.field}: {self.baseline!r} -> {self.current!r}"


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}"))
        return flat
    return {prefix: value}


def _fields(machine_info: Mapping[str, Any]) -> dict[str, Any]:
    fields = {name: machine_info.get(name, ABSENT) for name in TOP_LEVEL_FIELDS}
    if "quantbench" in machine_info:
        fields.update(_flatten(machine_info["quantbench"], "quantbench"))
    if "quantbench" in machine_info:
        fields.setdefault("quantbench.isa.label", ABSENT)
    return {k: v for k, v in fields.items()
            if k in KEPT_FIELDS or (k not in IGNORED_FIELDS and not k.startswith(IGNORED_PREFIXES))}


def _same(a: Any, b: Any) -> bool:
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))
    if numbers and (isinstance(a, float) or isinstance(b, float)):
        return math.isclose(a, b, rel_tol=FLOAT_TOLERANCE)
    return a == b


def machine_differences(baseline: Mapping[str, Any], current: Mapping[str, Any]) -> list[MachineDifference]:
    """Each field that differs between two runs' ``machine_info``, in a stable order."""
    base, cur = _fields(baseline or {}), _fields(current or {})
    if ("quantbench" in (baseline or {})) != ("quantbench" in (current or {})):
        # One side lacks the block entirely: one line says so instead of a dozen "<absent>".
        base = {k: v for k, v in base.items() if not k.startswith("quantbench")}
        cur = {k: v for k, v in cur.items() if not k.startswith("quantbench")}
        diffs = [MachineDifference("quantbench", "present" if "quantbench" in (baseline or {}) else ABSENT,
                                   "present" if "quantbench" in (current or {}) else ABSENT)]
    else:
        diffs = []
    for name in sorted(set(base) | set(cur)):
        a, b = base.get(name, ABSENT), cur.get(name, ABSENT)
        if not _same(a, b):
            diffs.append(MachineDifference(name, a, b))
    return diffs

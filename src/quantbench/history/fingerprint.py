"""A machine's fingerprint: what the machine is, not what it is called, so a reboot keeps its history.

Fields (:data:`FIELDS`), each chosen because it changes what a benchmark measures and stays put
across reboots and re-provisioning of the same kind of host:

* ``cpu_model``, ``vendor``, ``family``, ``model``: the CPU (its brand string, and the numbers that
  tell a Zen 3 from a Zen 4 when both call themselves "AMD EPYC");
* ``isa``: the kernel-relevant flags quantbench tracks (:data:`quantbench.isa.TRACKED`), as the CPU
  has them (``QUANTBENCH_HIDE_CPU_FLAGS``/``SHOW`` change what the code is told, not the machine);
* ``arch``: x86_64, aarch64...;
* ``physical_cores``, ``logical_cpus``;
* ``ram_class_gib``: the smallest power of two at or above 97 % of the total memory, so 23.5 GiB and
  23.4 GiB are one class (32) while a 64 GiB host is another;
* ``os`` and ``kernel``: the system's name and the kernel's major.minor ("Linux", "6.18"), not the
  build suffix that changes with every host image;
* ``gpu``: the accelerator's name, or "none".

Left out on purpose: the hostname (runners are renamed and recycled), bogomips and clock rates
(they drift between boots: folo-rs#429 split one runner's history by hashing them), cache sizes
(py-cpuinfo reads them differently across versions) and library versions (they are the run's, kept
with the run). The id is the first 16 hex digits of the SHA-256 of the canonical JSON of the fields.

The same function reads a live machine (:func:`this_machine`) and a stored run's ``machine_info``
(:func:`from_machine_info`): the live reading is built in the shape a run records, so a run imported
later gets the id the machine has now, wherever the run recorded the fields. A field a run lacks is
None, listed in ``missing``, and part of the hash (an old run without core counts gets its own id
rather than a wrong one).

Pure standard library (psutil and the harness's readers only for the live machine).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from quantbench import isa as isa_mod

#: Bumped when the fields or their normalization change (it is hashed, so ids change with it).
FINGERPRINT_VERSION = 1
FIELDS = ("cpu_model", "vendor", "family", "model", "isa", "arch", "physical_cores", "logical_cpus",
          "ram_class_gib", "os", "kernel", "gpu")
#: 97 %: a host's total memory is a little below its nominal size (firmware and kernel reservations).
RAM_SLACK = 0.97


@dataclass(frozen=True)
class Fingerprint:
    """A machine identity: ``id`` (16 hex digits), the ``fields`` it hashes, and the ones a run lacked."""

    id: str
    fields: dict[str, Any] = field(compare=False)
    missing: tuple[str, ...] = field(compare=False, default=())

    @property
    def label(self) -> str:
        """One human line: "AMD EPYC · Zen 3, AVX2 · 2 cores / 2 threads · 32 GiB class · Linux 6.18"."""
        f = self.fields
        parts = [f.get("cpu_model") or "unknown CPU"]
        facts: dict[str, Any] = {"family": f.get("family"), "model": f.get("model"),
                                 "microarchitecture": isa_mod.microarchitecture(f.get("vendor"), f.get("family"),
                                                                                f.get("model"))}
        if f.get("isa") is not None:
            parts.append(isa_mod.short_label({**facts, **{flag: True for flag in f["isa"]}}))
        elif f.get("family") is not None:
            parts.append(facts["microarchitecture"] or f"family {f['family']} model {f['model']}")
        if f.get("physical_cores") is not None or f.get("logical_cpus") is not None:
            cores, threads = (("?" if f.get(k) is None else f[k]) for k in ("physical_cores", "logical_cpus"))
            parts.append(f"{cores} cores / {threads} threads")
        if f.get("ram_class_gib") is not None:
            parts.append(f"{f['ram_class_gib']} GiB class")
        if f.get("os"):
            parts.append(f"{f['os']} {f.get('kernel') or ''}".strip())
        if f.get("gpu") not in (None, "none"):
            parts.append(str(f["gpu"]))
        line = " · ".join(parts)
        return line + (f" (not recorded: {', '.join(self.missing)})" if self.missing else "")

    def to_json(self) -> dict[str, Any]:
        """What the store keeps in ``machines.description``."""
        return {"id": self.id, "version": FINGERPRINT_VERSION, "fields": dict(self.fields),
                "missing": list(self.missing), "label": self.label}


def canonical_json(fields: Mapping[str, Any]) -> str:
    return json.dumps({"fingerprint_version": FINGERPRINT_VERSION, **fields}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=True)


def make(fields: Mapping[str, Any]) -> Fingerprint:
    """The fingerprint of normalized ``fields`` (every name of :data:`FIELDS`; None where unknown)."""
    full = {name: fields.get(name) for name in FIELDS}
    digest = hashlib.sha256(canonical_json(full).encode("ascii")).hexdigest()[:16]
    return Fingerprint(digest, full, tuple(name for name in FIELDS if full[name] is None))


def ram_class(total_gib: float | None) -> int | float | None:
    """The smallest power of two at or above :data:`RAM_SLACK` x ``total_gib`` (GiB)."""
    if total_gib is None or not isinstance(total_gib, (int, float)) or total_gib <= 0 or not math.isfinite(total_gib):
        return None
    size = 2.0 ** math.ceil(math.log2(total_gib * RAM_SLACK))
    return int(size) if size >= 1 else size


def kernel_version(release: Any) -> str | None:
    """"6.18.44-fc-v1272" -> "6.18"; None where it does not start with two numbers."""
    match = re.match(r"\s*(\d+)\.(\d+)", str(release or ""))
    return f"{int(match.group(1))}.{int(match.group(2))}" if match else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value), 0) if value not in (None, "") else None
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    text = " ".join(str(value).split()) if value is not None else ""
    return text or None


def _isa_flags(cpu: Mapping[str, Any], recorded: Mapping[str, Any] | None) -> list[str] | None:
    """The tracked flags present: the raw flag list (pytest-benchmark's py-cpuinfo block) first, else
    quantbench's ISA block when nothing was hidden or shown in it; else unknown."""
    flags = cpu.get("flags")
    if isinstance(flags, (list, tuple)) and flags:
        have = {str(flag) for flag in flags}
        return [flag for flag in sorted(isa_mod.TRACKED) if flag in have]
    if isinstance(recorded, Mapping) and not recorded.get("hidden") and not recorded.get("shown") \
            and any(flag in recorded for flag in isa_mod.TRACKED):
        return [flag for flag in sorted(isa_mod.TRACKED) if recorded.get(flag) is True]
    return None


def fields_from_machine_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """The normalized fields of a run's ``machine_info`` (pytest-benchmark's keys plus ``quantbench``)."""
    info = info if isinstance(info, Mapping) else {}
    own = info.get("quantbench") if isinstance(info.get("quantbench"), Mapping) else {}
    cpu = info.get("cpu") if isinstance(info.get("cpu"), Mapping) else {}
    recorded = own.get("isa") if isinstance(own.get("isa"), Mapping) else None

    def first(*values: Any) -> Any:
        return next((value for value in values if value not in (None, "")), None)

    gpu = (_text(own["gpu"]) or "none") if "gpu" in own else None
    return {
        "cpu_model": _text(first(own.get("cpu_model"), cpu.get("brand_raw"))),
        "vendor": _text(first((recorded or {}).get("vendor"), cpu.get("vendor_id_raw"))),
        "family": _int(first((recorded or {}).get("family"), cpu.get("family"))),
        "model": _int(first((recorded or {}).get("model"), cpu.get("model"))),
        "isa": _isa_flags(cpu, recorded),
        "arch": _text(first(info.get("machine"), cpu.get("arch_string_raw"))),
        "physical_cores": _int(own.get("cpu_cores_physical")),
        "logical_cpus": _int(first(own.get("cpu_cores_logical"), cpu.get("count"))),
        "ram_class_gib": ram_class(own.get("ram_gb")),
        "os": _text(info.get("system")),
        "kernel": kernel_version(info.get("release")),
        "gpu": gpu,
    }


def from_machine_info(info: Mapping[str, Any]) -> Fingerprint:
    """The fingerprint of a stored run's ``machine_info``."""
    return make(fields_from_machine_info(info))


def this_machine_info() -> dict[str, Any]:
    """This machine, in the shape a run's ``machine_info`` records it (only the keys the fingerprint reads)."""
    import platform

    import psutil

    from quantbench.hardware import machine

    isa = isa_mod.this_cpu()
    return {
        "machine": platform.machine(),
        "system": platform.system(),
        "release": platform.release(),
        "cpu": {"flags": sorted(isa_mod.cpu_flags())},
        "quantbench": {
            "cpu_model": machine.cpu_model(),
            "isa": isa,
            "cpu_cores_physical": psutil.cpu_count(logical=False),
            "cpu_cores_logical": psutil.cpu_count(logical=True),
            "ram_gb": round(psutil.virtual_memory().total / 1024**3, 1),
            "gpu": machine.gpu_name(),
        },
    }


def this_machine() -> Fingerprint:
    """This machine's fingerprint (what a run made here now will be stored under)."""
    return from_machine_info(this_machine_info())

"""Which instruction sets a CPU has, and what that means for the kernels a cell runs.

Two machines that both call themselves "AMD EPYC" can differ by a decade of int8 speed: a
Zen 3 has AVX2 only (no VNNI, no native bf16), a Zen 4 adds AVX-512 with VNNI and BF16. Which
kernel a runtime picks, and so every figure, follows those flags. This module reads them (from
``/proc/cpuinfo`` here, or from a run file's ``machine_info`` there) and says it in one line.

Pure standard library: the reports and the gate read it from run files without torch.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

#: The flags that decide which CPU kernels run (the kernel's spelling in /proc/cpuinfo).
TRACKED = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16",
           "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "asimd", "sve", "bf16", "i8mm")

#: For the harness's own tests and for what-if runs: flags listed here (comma-separated) are treated
#: as absent, so an AVX-512 machine can exercise the AVX2-only paths (the emulated limits, the bf16 skip).
HIDE_FLAGS_ENV = "QUANTBENCH_HIDE_CPU_FLAGS"
#: The other direction, for the harness's own tests: flags listed here are described as present (cache
#: keys, labels, skip reasons), so an AVX2 machine can exercise the code that reads an AVX-512 one. It
#: changes what the code is told, never which kernels run: no sweep should be timed with it.
SHOW_FLAGS_ENV = "QUANTBENCH_SHOW_CPU_FLAGS"

#: Native bf16 matmul on x86: AVX512_BF16 (Zen 4, Cooper Lake and later) or AMX-BF16 (Sapphire Rapids).
BF16_NATIVE = ("avx512_bf16", "amx_bf16")
#: Native int8 dot products: VNNI (AVX-512 or AVX) or AMX-INT8. AVX2 alone still has an int8 path
#: (vpmaddubsw, what fbgemm and MLAS use), but torch._int_mm falls to a reference loop without these.
INT8_VNNI = ("avx512_vnni", "avx_vnni", "amx_int8")

# AMD families and model ranges (AMD's processor programming references): readable names for the
# machines this project meets. Anything else is described by its family and model numbers only.
_AMD = {23: ((0x00, 0x2F, "Zen / Zen+"), (0x30, 0xFF, "Zen 2")),
        25: ((0x00, 0x0F, "Zen 3"), (0x10, 0x1F, "Zen 4"), (0x20, 0x5F, "Zen 3"), (0x60, 0xAF, "Zen 4")),
        26: ((0x00, 0xFF, "Zen 5"),)}


def _listed(env: str) -> frozenset[str]:
    return frozenset(f.strip() for f in os.environ.get(env, "").split(",") if f.strip())


def _hidden() -> frozenset[str]:
    return _listed(HIDE_FLAGS_ENV)


def _shown() -> frozenset[str]:
    return _listed(SHOW_FLAGS_ENV) - _hidden()


@functools.lru_cache(maxsize=1)
def _cpuinfo_fields() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    fields: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor is enough: all cores of a VM share the flags
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def _int(value: Any) -> int | None:
    try:
        return int(str(value), 0) if value not in (None, "") else None
    except ValueError:
        return None


def microarchitecture(vendor: str | None, family: int | None, model: int | None) -> str | None:
    if vendor != "AuthenticAMD" or family is None or model is None:
        return None
    for low, high, name in _AMD.get(family, ()):
        if low <= model <= high:
            return name
    return None


def describe(flags: Iterable[str], *, vendor: str | None = None, family: int | None = None,
             model: int | None = None) -> dict[str, Any]:
    """The ISA facts a run records: each tracked flag, the CPU's family and model, and one line."""
    have = (frozenset(flags) | _shown()) - _hidden()
    out: dict[str, Any] = {flag: flag in have for flag in TRACKED}
    out.update(vendor=vendor, family=family, model=model, microarchitecture=microarchitecture(vendor, family, model),
               bf16_native=any(f in have for f in BF16_NATIVE), int8_vnni=any(f in have for f in INT8_VNNI),
               hidden=sorted(_hidden() & frozenset(TRACKED)), shown=sorted(_shown() & frozenset(TRACKED)))
    out["label"] = label(out)
    return out


def label(isa: Mapping[str, Any]) -> str:
    """"AVX2 · AVX-512 F/VNNI/BF16 · no AMX" and the CPU's generation where known."""
    parts = []
    if isa.get("avx2"):
        parts.append("AVX2")
    if isa.get("avx512f"):
        extras = [name for flag, name in (("avx512_vnni", "VNNI"), ("avx512_bf16", "BF16"), ("avx512_fp16", "FP16"))
                  if isa.get(flag)]
        parts.append("AVX-512 " + "/".join(["F", *extras]))
    elif isa.get("avx2"):
        parts.append("no AVX-512")
    if isa.get("avx_vnni"):
        parts.append("AVX-VNNI")
    amx = [name for flag, name in (("amx_int8", "INT8"), ("amx_bf16", "BF16")) if isa.get(flag)]
    if isa.get("avx2") or isa.get("avx512f"):
        parts.append("AMX " + "/".join(amx) if amx else "no AMX")
    if isa.get("asimd"):
        parts.append("NEON" + ("/SVE" if isa.get("sve") else "") + ("/BF16" if isa.get("bf16") else "")
                     + ("/I8MM" if isa.get("i8mm") else ""))
    where = isa.get("microarchitecture") or (
        f"family {isa['family']} model {isa['model']}" if isa.get("family") is not None else None)
    line = " · ".join(parts) or "unknown ISA"
    if where:
        line = f"{where}: {line}"
    if isa.get("hidden"):
        line += f" (hidden by {HIDE_FLAGS_ENV}: {', '.join(isa['hidden'])})"
    if isa.get("shown"):
        line += f" (shown by {SHOW_FLAGS_ENV}: {', '.join(isa['shown'])})"
    return line


def short_label(isa: Mapping[str, Any]) -> str:
    """A column title's worth: "Zen 3, AVX2" or "Zen 5, AVX-512 VNNI/BF16"."""
    if isa.get("avx512f"):
        top = "AVX-512" + ("" if not (isa.get("avx512_vnni") or isa.get("avx512_bf16")) else " " + "/".join(
            n for f, n in (("avx512_vnni", "VNNI"), ("avx512_bf16", "BF16")) if isa.get(f)))
    elif isa.get("avx2"):
        top = "AVX2"
    elif isa.get("asimd"):
        top = "NEON"
    else:
        top = "unknown ISA"
    if isa.get("amx_tile"):
        top += " + AMX"
    where = isa.get("microarchitecture") or (
        f"family {isa['family']} model {isa['model']}" if isa.get("family") is not None else None)
    return f"{where}, {top}" if where else top


def _reading() -> tuple[list[str], str | None, int | None, int | None]:
    """This CPU's own flags, vendor, family and model: /proc/cpuinfo, else py-cpuinfo's reading."""
    fields = _cpuinfo_fields()
    flags = (fields.get("flags") or fields.get("Features") or "").split()
    vendor, family, model = fields.get("vendor_id"), _int(fields.get("cpu family")), _int(fields.get("model"))
    if not flags:
        try:
            import cpuinfo  # py-cpuinfo, a pytest-benchmark dependency

            info = cpuinfo.get_cpu_info()
            flags, vendor = info.get("flags") or [], info.get("vendor_id_raw")
            family, model = info.get("family"), info.get("model")
        except Exception:  # noqa: BLE001 - no reading at all: every flag reads False, and the label says so
            flags = []
    return flags, vendor, family, model


def this_cpu() -> dict[str, Any]:
    """This machine's ISA, read from /proc/cpuinfo (py-cpuinfo's reading where there is none)."""
    flags, vendor, family, model = _reading()
    return describe(flags, vendor=vendor, family=family, model=model)


def cpu_flags() -> frozenset[str]:
    """The tracked flags this CPU really has, before :data:`HIDE_FLAGS_ENV` and :data:`SHOW_FLAGS_ENV`
    (what identifies the hardware, e.g. in a machine fingerprint, rather than what the code is told)."""
    return frozenset(_reading()[0]) & frozenset(TRACKED)


def from_machine_info(info: Mapping[str, Any]) -> dict[str, Any] | None:
    """A run file's ISA: what quantbench recorded, else derived from pytest-benchmark's cpu block
    (runs made before the ISA was recorded still carry its flags)."""
    recorded = (info.get("quantbench") or {}).get("isa")
    if isinstance(recorded, Mapping):
        return dict(recorded)
    cpu = info.get("cpu") or {}
    if not cpu.get("flags"):
        return None
    return describe(cpu["flags"], vendor=cpu.get("vendor_id_raw"), family=_int(cpu.get("family")),
                    model=_int(cpu.get("model")))


def missing_for(features: Iterable[str], isa: Mapping[str, Any] | None = None) -> str | None:
    """None when the CPU has any of ``features``; else the reason, naming what it lacks."""
    isa = isa if isa is not None else this_cpu()
    wanted = tuple(features)
    if any(isa.get(f) for f in wanted):
        return None
    return f"this CPU ({isa.get('label') or label(isa)}) has none of {', '.join(f.upper() for f in wanted)}"

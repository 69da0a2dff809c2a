"""Synthetic runs for the history tests: machine infos in the shape pytest-benchmark and quantbench write
them (py-cpuinfo's block included, with the clock rates and bogomips a fingerprint must ignore), and small
runs on them with a chosen commit, commit time and run time."""

from __future__ import annotations

import copy

from quantbench import isa
from tests.run_factory import DEFAULT_MACHINE, make_run


def machine_info(*, cpu_model: str = "AMD EPYC", vendor: str = "AuthenticAMD", family: int = 25, model: int = 1,
                 flags: tuple[str, ...] = ("fpu", "sse4_2", "avx", "avx2", "fma", "f16c"), physical: int = 2,
                 logical: int = 2, ram_gb: float = 23.5, node: str = "vm", release: str = "6.18.44-fc-v1045",
                 hz: int = 2445406000, system: str = "Linux", gpu: str | None = None,
                 isa_block: bool = True) -> dict:
    """A machine_info as pytest-benchmark plus quantbench write it (py-cpuinfo's block included)."""
    info = copy.deepcopy(DEFAULT_MACHINE)
    info.update(node=node, release=release, system=system, machine="x86_64")
    info["cpu"] = {"brand_raw": cpu_model, "vendor_id_raw": vendor, "family": family, "model": model, "count": logical,
                   "flags": list(flags), "arch_string_raw": "x86_64", "hz_actual": [hz, 0],
                   "hz_actual_friendly": f"{hz / 1e9:.4f} GHz", "bogomips": hz / 5e5, "l3_cache_size": 524288}
    own = info["quantbench"]
    own.update(cpu_model=cpu_model, cpu_cores_physical=physical, cpu_cores_logical=logical, ram_gb=ram_gb, gpu=gpu)
    if isa_block:
        own["isa"] = isa.describe(flags, vendor=vendor, family=family, model=model)
    else:
        own.pop("isa", None)
    return info


def run_on(info: dict | None = None, *, seed: int = 0, commit: str = "a" * 40, commit_time: str | None = None,
           run_time: str = "2026-11-22T02:00:00.000000+00:00", branch: str = "main", **kwargs) -> dict:
    """A small synthetic run (two variants, one batch size) on ``info``."""
    run = make_run(seed=seed, machine=info or machine_info(), batch_sizes=kwargs.pop("batch_sizes", (1,)),
                   variants=kwargs.pop("variants", (("fp32", "pytorch"), ("dynamic_int8", "pytorch"))), **kwargs)
    run["commit_info"] = {"id": commit, "branch": branch, "dirty": False, "project": "quantbench"}
    if commit_time:
        run["commit_info"]["time"] = commit_time
    run["datetime"] = run_time
    return run

"""A history with a known answer, for the trend page and export tests: two machine fingerprints (a Zen 3 and
an AVX-512 VM, as docs/runs has), COMMITS commits with one run each per machine, and a latency step planted on
the Zen 3 machine from commit STEP_AT on (every variant 1.10x slower there; the AVX-512 machine stays flat).
Quality figures carry 95 % intervals (tests/interval_factory.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tests.interval_factory import with_intervals
from tests.unit.history.factory import machine_info, run_on

COMMITS = 12
STEP_AT = 6
PLANTED = 1.10
ZEN3 = machine_info()
AVX512 = machine_info(cpu_model="AMD EPYC 9B45", family=26, model=2,
                      flags=("fpu", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16"))


def commit_id(i: int) -> str:
    return f"{i:02x}{'7e' * 19}"


@dataclass(frozen=True)
class Synthetic:
    db: str
    zen3: str  # fingerprint ids
    avx512: str
    stepped_commit: str
    run_files: tuple[Path, ...]


def build_history(folder: Path, *, db: str | None = None) -> Synthetic:
    """Write the runs into ``folder`` and add them to ``db`` (default: an SQLite file there)."""
    from quantbench.history import open_store
    from quantbench.history.fingerprint import from_machine_info

    db = db or str(folder / "history.sqlite")
    files = []
    with open_store(db) as store:
        for i in range(COMMITS):
            for m, (info, base) in enumerate(((ZEN3, 1.0), (AVX512, 0.5))):
                scale = base * (PLANTED if m == 0 and i >= STEP_AT else 1.0)
                run = with_intervals(run_on(info, seed=1000 + 10 * i + m, commit=commit_id(i),
                             commit_time=f"2026-11-{i + 1:02d}T10:00:00+00:00",
                             run_time=f"2026-11-{i + 1:02d}T12:0{m}:00+00:00", latency_scale=scale))
                path = folder / f"run-{i:02d}-{m}.json"
                path.write_text(json.dumps(run), encoding="utf-8")
                store.add(path)
                files.append(path)
    return Synthetic(db=db, zen3=from_machine_info(ZEN3).id, avx512=from_machine_info(AVX512).id,
                     stepped_commit=commit_id(STEP_AT), run_files=tuple(files))

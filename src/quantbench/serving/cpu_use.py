"""Who used the CPU during a point: the harness process (LoadGen, the client's threads and, for an
in-process system, the model itself) and a system serving from its own process (llama-server).

On a 2-core VM the load generator shares the cores with the server it measures; these figures let a
reader see how much it took (issue 35: LoadGen and the client's streaming threads, two per slot,
beside llama-server).
"""

from __future__ import annotations

import os
from typing import Any


def _cpu_seconds(pid: int | None) -> float | None:
    import psutil

    try:
        times = psutil.Process(pid).cpu_times() if pid else psutil.Process(os.getpid()).cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return times.user + times.system


class CpuUse:
    """CPU seconds of this process and of ``server_pid`` between :meth:`start` and :meth:`figures`."""

    def __init__(self, server_pid: int | None = None):
        self.server_pid = server_pid
        self._harness = self._server = None

    def start(self) -> "CpuUse":
        self._harness = _cpu_seconds(None)
        self._server = _cpu_seconds(self.server_pid) if self.server_pid else None
        return self

    def figures(self, wall_s: float | None) -> dict[str, Any]:
        cores = os.cpu_count() or 1
        out: dict[str, Any] = {"cores": cores}
        harness = _cpu_seconds(None)
        if harness is not None and self._harness is not None:
            used = harness - self._harness
            out["harness_cpu_s"] = round(used, 3)
            if wall_s:
                out["harness_cpu_share"] = round(used / (wall_s * cores), 4)
        if self.server_pid:
            server = _cpu_seconds(self.server_pid)
            if server is not None and self._server is not None:
                out["server_cpu_s"] = round(server - self._server, 3)
                if wall_s:
                    out["server_cpu_share"] = round((server - self._server) / (wall_s * cores), 4)
        out["harness_is"] = ("LoadGen and the client's threads" if self.server_pid
                             else "LoadGen, the client's threads and the in-process model")
        return out

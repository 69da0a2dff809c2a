"""Resident memory: a baseline before a variant is built, and the peak while a cell runs.

A background thread polls the process RSS (psutil) because the kernel's own high-water mark
(ru_maxrss) never goes down, so it would carry one cell's peak into every later cell.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading

import psutil

MB = 1024 * 1024


def release_memory() -> None:
    """Collect garbage and hand freed heap back to the OS, so the next baseline is honest."""
    gc.collect()
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        try:
            ctypes.CDLL(libc_name).malloc_trim(0)  # glibc only; elsewhere a no-op
        except (OSError, AttributeError):
            pass


#: glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value


def fix_malloc_thresholds() -> str | None:
    """Pin glibc's mmap and trim thresholds; what the record says of the allocator, or None off glibc.

    By default glibc raises its mmap threshold to the size of each mmapped block freed (up to
    32 MiB), so a later tensor of that size comes from the heap, which keeps it after ``free``.
    Which blocks take which path depends on the order threads free them, and PyTorch's peak RSS
    moved by up to 30 MB between runs of one commit (65.7 and 84.0 MB for MiniLM fp32 at batch 1).
    Set explicitly, the thresholds stop adapting: every tensor of 128 KiB or more is its own
    mapping, returned at ``free``, so the peak counts what was alive, not what the heap kept.
    """
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return None
    try:
        libc = ctypes.CDLL(libc_name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): its allocator as it is
        return None
    if not (mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, MMAP_THRESHOLD)):
        return None
    return f"glibc, mmap and trim thresholds fixed at {MMAP_THRESHOLD // 1024} KiB"


def rss_bytes() -> int:
    return psutil.Process().memory_info().rss


class PeakRSS:
    """Context manager: ``.peak`` is the largest RSS seen while the block ran."""

    def __init__(self, interval_s: float = 0.002):
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._process = psutil.Process()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "PeakRSS":
        self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._poll, name="quantbench-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def cuda_peaks(device: str) -> dict[str, float]:
    if device != "cuda":
        return {}
    import torch

    return {"cuda_peak_allocated_mb": round(torch.cuda.max_memory_allocated() / MB, 2),
            "cuda_peak_reserved_mb": round(torch.cuda.max_memory_reserved() / MB, 2)}


def reset_cuda_peaks(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()

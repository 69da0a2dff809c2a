"""Peak memory figures: the allocator settings the memory worker pins, and what they change."""

from __future__ import annotations

import ctypes.util
import json
import subprocess
import sys

import pytest

from quantbench.measures.memory import MMAP_THRESHOLD, fix_malloc_thresholds

# A process that frees one 16 MiB block (glibc then raises its mmap threshold to 16 MiB by
# default), then allocates, touches and frees 24 blocks of 1 MiB: how much RSS they leave behind.
PROBE = r"""
import ctypes, ctypes.util, json, sys
from quantbench.measures.memory import fix_malloc_thresholds, rss_bytes
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
allocator = fix_malloc_thresholds() if sys.argv[1] == "fixed" else None
MiB = 1 << 20
big = libc.malloc(16 * MiB); libc.memset(big, 1, 16 * MiB); libc.free(big)
before = rss_bytes()
blocks = [libc.malloc(MiB) for _ in range(24)]
for b in blocks:
    libc.memset(b, 1, MiB)
for b in blocks:
    libc.free(b)
print(json.dumps({"kept_mb": (rss_bytes() - before) / MiB, "allocator": allocator}))
"""


def probe(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux") or not ctypes.util.find_library("c"),
                    reason="glibc's mallopt: Linux only")
def test_fixed_thresholds_return_freed_tensors_that_the_adaptive_heap_keeps():
    adaptive, fixed = probe("adaptive"), probe("fixed")
    print(f"\nRSS kept after freeing 24 x 1 MiB: adaptive {adaptive['kept_mb']:.1f} MB, fixed {fixed['kept_mb']:.1f} MB")
    # glibc's default: the 1 MiB blocks come from the heap and stay resident after free.
    assert adaptive["kept_mb"] >= 16
    # Pinned: each block was its own mapping, gone at free.
    assert fixed["kept_mb"] < 2
    assert fixed["allocator"] == f"glibc, mmap and trim thresholds fixed at {MMAP_THRESHOLD // 1024} KiB"


def test_without_mallopt_the_allocator_is_left_alone_and_the_record_says_nothing(monkeypatch):
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert fix_malloc_thresholds() is None

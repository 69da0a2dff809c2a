"""--shard K/N: split a sweep's cells across machines, deterministically and evenly.

Cells are ordered by a stable hash of their key (never by Python's salted ``hash``) and dealt
round-robin, so every machine computes the same split: shard sizes differ by at most one,
and the N shards together are exactly the sweep.
"""

from __future__ import annotations

import hashlib

from quantbench.errors import QuantbenchError


def parse_shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise QuantbenchError(f"--shard {text}: expected K/N with whole numbers, e.g. 2/3") from None
    if n < 1 or not 1 <= k <= n:
        raise QuantbenchError(f"--shard {text}: K must be between 1 and N (N >= 1)")
    return k, n


def stable_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def shard_of(keys: list[str], n: int) -> dict[str, int]:
    """key -> shard number (1..n)."""
    ordered = sorted(set(keys), key=stable_hash)
    return {key: i % n + 1 for i, key in enumerate(ordered)}

"""A suite's ``serving.llama_server:`` mapping: llama-server settings that depart from its defaults,
and the shared-prefix workload (backends/llamacpp/server.py; docs/serving.md).

Every key is optional; a key left out means the server's own default (flash attention ``auto``, the
prompt cache on, ``--threads-batch`` equal to ``--threads``) and no shared prefix. The thread count
itself is the suite's ``measure.threads`` (null: the physical cores, as llama.cpp counts them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quantbench.suite.reader import Reader

FLASH_ATTN = ("auto", "on", "off")
KEYS = ("flash_attn", "cache_prompt", "threads_batch", "shared_prefix_tokens")


@dataclass(frozen=True)
class LlamaServerSettings:
    """What the suite set; None (or 0 prefix tokens) where it left the server's default."""

    flash_attn: str | None = None  # --flash-attn
    cache_prompt: bool | None = None  # --cache-prompt / --no-cache-prompt and each request's cache_prompt
    threads_batch: int | None = None  # -tb: threads for prompt processing
    shared_prefix_tokens: int = 0  # held-out tokens every served prompt starts with (after BOS)

    def summary(self) -> dict[str, Any]:
        """The keys the suite set (an empty mapping when it set none)."""
        return {k: v for k, v in self.__dict__.items() if v is not None and not (k == "shared_prefix_tokens" and v == 0)}


def read_llama_server(reader: Reader) -> LlamaServerSettings:
    reader.check_keys(KEYS)
    threads_batch = reader.get("threads_batch", int)
    if threads_batch is not None and threads_batch < 1:
        raise reader.fail("threads_batch", f"must be a positive integer (or left out: the same as threads), "
                                           f"got {threads_batch!r}")
    prefix = reader.get("shared_prefix_tokens", int, 0)
    if prefix < 0:
        raise reader.fail("shared_prefix_tokens", f"must be 0 or more tokens, got {prefix!r}")
    flash_attn = reader.get("flash_attn", (str, bool))
    if isinstance(flash_attn, bool):  # YAML reads a bare on/off as a boolean
        flash_attn = "on" if flash_attn else "off"
    if flash_attn is not None and flash_attn not in FLASH_ATTN:
        raise reader.fail("flash_attn", f"{flash_attn!r} is not allowed; allowed values: {', '.join(FLASH_ATTN)}")
    return LlamaServerSettings(flash_attn=flash_attn, cache_prompt=reader.get("cache_prompt", bool),
                               threads_batch=threads_batch, shared_prefix_tokens=prefix)

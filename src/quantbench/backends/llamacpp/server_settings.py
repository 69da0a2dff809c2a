"""What llama-server runs with, and where each value came from: the server's own default, this
machine (the thread count), or the suite (``measure.threads``, ``serving.llama_server``).

The defaults are llama-server's, so a cell measures the server as people deploy it: flash
attention ``auto`` (llama.cpp turns it on where the backend supports it; the CPU backend does),
the prompt cache on, and as many threads as physical cores (llama.cpp's ``-t -1`` on x86 Linux:
``common_cpu_get_num_math``, the physical cores; on a hybrid CPU only its performance cores, which
psutil does not tell apart, so the count recorded here is the physical one). The values are passed
explicitly all the same, so the command line in the record is the whole story.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

DEFAULT_FLASH_ATTN = "auto"
DEFAULT_CACHE_PROMPT = True
SERVER_DEFAULT = "llama-server default"


def physical_cores() -> tuple[int, str]:
    """The physical core count and how it was found; the logical CPUs, with why, when psutil cannot tell."""
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
        why = "psutil.cpu_count(logical=False) returned None"
    except (ImportError, OSError) as exc:
        physical, why = None, f"psutil could not count them ({type(exc).__name__}: {exc})"
    if physical:
        return int(physical), "physical cores (psutil.cpu_count(logical=False)), llama.cpp's default"
    return int(os.cpu_count() or 1), f"logical CPUs (os.cpu_count()): the physical cores are unknown, {why}"


@dataclass(frozen=True)
class Setting:
    value: Any
    source: str  # SERVER_DEFAULT, the machine, or "suite: <key>"


@dataclass(frozen=True)
class ServerSettings:
    flash_attn: Setting
    threads: Setting
    threads_batch: Setting
    cache_prompt: Setting
    shared_prefix_tokens: Setting

    def flags(self) -> list[str]:
        out = ["-t", str(self.threads.value), "-tb", str(self.threads_batch.value),
               "--flash-attn", str(self.flash_attn.value)]
        return out if self.cache_prompt.value else [*out, "--no-cache-prompt"]

    def describe(self) -> dict[str, Any]:
        return {name: {"value": s.value, "from": s.source} for name, s in self.__dict__.items()}


def resolve(options, threads: int | None) -> ServerSettings:
    """``options``: the suite's ``serving.llama_server`` (suite/llama_server.py; None: every default);
    ``threads``: the suite's ``measure.threads`` (None: the physical cores)."""
    def pick(key: str, default: Any, default_source: str = SERVER_DEFAULT) -> Setting:
        value = getattr(options, key, None) if options is not None else None
        return Setting(default, default_source) if value is None else Setting(value, f"suite: serving.llama_server.{key}")

    thread_setting = Setting(int(threads), "suite: measure.threads") if threads else Setting(*physical_cores())
    return ServerSettings(
        flash_attn=pick("flash_attn", DEFAULT_FLASH_ATTN),
        threads=thread_setting,
        threads_batch=pick("threads_batch", thread_setting.value, f"same as threads ({SERVER_DEFAULT})"),
        cache_prompt=pick("cache_prompt", DEFAULT_CACHE_PROMPT),
        shared_prefix_tokens=Setting(getattr(options, "shared_prefix_tokens", 0) or 0,
                                     "suite: serving.llama_server.shared_prefix_tokens"
                                     if getattr(options, "shared_prefix_tokens", 0) else "default: none"))

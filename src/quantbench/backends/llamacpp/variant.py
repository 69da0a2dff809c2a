"""A GGUF model run by llama.cpp through llama-cpp-python's low-level bindings.

Why the low-level API and not ``llama_cpp.Llama``: ``Llama`` generates one sequence, and its
``logits_all`` computes and copies logits for every position. Here:

* ``generate`` decodes every row as its own sequence (``seq_id`` = row) in one multi-sequence
  ``llama_batch`` per step, and asks for logits at each sequence's last token only;
* ``forward`` (perplexity, KL) asks for logits at every token, ``logits_at`` (zero-shot labels)
  at one token per row, fed only up to that token;
* greedy is an argmax over the logits in numpy: no sampler, no randomness.

The ids are fed exactly as the harness's HF tokenizer made them (BOS included where it put
one): nothing is re-tokenized. A context is made for the shape a call needs (sequences, tokens
per sequence, logits rows) and kept while the next calls fit in it, so timed rounds
reuse one context and the timed path never allocates (the harness warms up on full-length
rounds, see ``full_length_warmup``).
"""

from __future__ import annotations

import ctypes
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quantbench.backends.base import BuildInfo, Variant
from quantbench.errors import QuantbenchError

CTX_BLOCK = 256  # llama.cpp pads each sequence's KV cells to 256; shapes are rounded the same way
log = logging.getLogger(__name__)
#: ggml_log_level (NONE, DEBUG, INFO, WARN, ERROR; CONT continues the previous message) -> logging.
#: llama-cpp-python 0.3.36's own callback maps the older enum: it prints warnings as errors and
#: drops errors. Warnings here are per-tensor quantization fallbacks, which the census records.
_LEVELS = {0: logging.INFO, 1: logging.DEBUG, 2: logging.DEBUG, 3: logging.INFO, 4: logging.ERROR}
_state: dict[str, Any] = {"callback": None, "level": logging.DEBUG}


def _on_log(level: int, text: bytes, _user_data) -> None:
    mapped = _state["level"] if level == 5 else _LEVELS.get(level, logging.DEBUG)
    _state["level"] = mapped
    if log.isEnabledFor(mapped):
        log.log(mapped, "llama.cpp: %s", text.decode("utf-8", errors="replace").rstrip("\n"))


def bindings():
    """llama_cpp, imported once with its backend initialized and its C log sent to ``log``."""
    import llama_cpp

    if _state["callback"] is None:
        _state["callback"] = llama_cpp.llama_log_callback(_on_log)  # kept: C holds the pointer
        llama_cpp.llama_log_set(_state["callback"], ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()
    return llama_cpp


def _round_up(value: int, block: int) -> int:
    return max(block, -(-value // block) * block)


@dataclass(frozen=True)
class Prompts:
    """Token ids per row, unpadded, and the columns of the padded array they came from."""

    rows: list[list[int]]
    columns: list[np.ndarray]
    width: int


@dataclass(frozen=True)
class ContextShape:
    """What a llama_context is sized for: sequences, KV cells per sequence, tokens and logits
    rows one ``llama_decode`` may carry."""

    n_seq: int
    n_ctx_seq: int
    n_batch: int
    n_outputs: int

    def covers(self, need: ContextShape) -> bool:
        """A context of this shape runs ``need`` as a context made for it would: same sequences and
        logits rows, at least as many KV cells and batch tokens (unused cells cost no compute)."""
        return (self.n_seq, self.n_outputs) == (need.n_seq, need.n_outputs) and \
            self.n_ctx_seq >= need.n_ctx_seq and self.n_batch >= need.n_batch


class LlamaCppVariant(Variant):
    """A causal LM variant on llama.cpp (CPU), with the methods the generation harness calls."""

    backend = "llamacpp"
    device = "cpu"
    task = "text-generation"

    def __init__(self, gguf: Path, *, quant: str, info: BuildInfo, threads: int | None, pad_token_id: int,
                 flash_attn: bool = False):
        self._lib = lib = bindings()  # held: the per-step path calls it without a lookup
        self.quant, self.info, self.pad_token_id = quant, info, pad_token_id
        self.threads = int(threads or os.cpu_count() or 1)
        self.flash_attn = flash_attn
        # The context is sized for prompt + new tokens: a 2-token warm-up could make one too small
        # for the round, which would then allocate inside the timed region. A full-length warm-up
        # makes the round's own context (about one round of time per cell).
        self.full_length_warmup = True
        params = lib.llama_model_default_params()
        params.n_gpu_layers = 0
        self._model = lib.llama_model_load_from_file(str(gguf).encode(), params)
        if not self._model:
            raise QuantbenchError(f"llama.cpp could not load {gguf}")
        self.n_vocab = int(lib.llama_vocab_n_tokens(lib.llama_model_get_vocab(self._model)))
        self._ctx = self._batch = self._mem = None
        self.shape: ContextShape | None = None
        self.last_perf: dict[str, Any] | None = None  # llama.cpp's own counters for the last generate
        self.last_outputs: list[int] = []  # logits rows requested by each llama_decode of the last call

    # --- context and batch -------------------------------------------------------------------

    def _context_params(self, shape: ContextShape):
        lib = self._lib
        params = lib.llama_context_default_params()
        params.n_ctx = shape.n_seq * shape.n_ctx_seq
        params.n_batch = shape.n_batch
        params.n_ubatch = min(shape.n_batch, 512)
        params.n_seq_max = shape.n_seq
        params.n_outputs_max = shape.n_outputs  # the logits buffers are sized for this many rows
        params.n_threads = params.n_threads_batch = self.threads
        params.flash_attn_type = (lib.LLAMA_FLASH_ATTN_TYPE_ENABLED if self.flash_attn
                                  else lib.LLAMA_FLASH_ATTN_TYPE_DISABLED)  # llama_cpp.Llama's default
        params.no_perf = False  # keep llama.cpp's perf counters
        params.kv_unified = False  # one KV stream per sequence: rows do not attend over each other's cells
        return params

    def _ensure(self, shape: ContextShape) -> None:
        """Keep the context if it covers ``shape``, else make one of exactly ``shape`` (the previous
        one is freed first: one context at a time, so memory figures hold one)."""
        if self.shape is not None and self.shape.covers(shape):
            return
        lib = self._lib
        if shape.n_seq > lib.llama_max_parallel_sequences():
            raise QuantbenchError(f"llama.cpp runs at most {lib.llama_max_parallel_sequences()} sequences at once, "
                                  f"not {shape.n_seq}")
        self._free_context()
        self._ctx = lib.llama_init_from_model(self._model, self._context_params(shape))
        if not self._ctx:
            raise QuantbenchError(f"llama.cpp could not make a context for {shape}")
        self._mem = lib.llama_get_memory(self._ctx)
        self._batch = lib.llama_batch_init(shape.n_batch, 0, 1)
        cap = shape.n_batch
        self._tokens = np.ctypeslib.as_array(self._batch.token, shape=(cap,))
        self._pos = np.ctypeslib.as_array(self._batch.pos, shape=(cap,))
        self._flags = np.ctypeslib.as_array(self._batch.logits, shape=(cap,))
        np.ctypeslib.as_array(self._batch.n_seq_id, shape=(cap,))[:] = 1
        self._seq = np.full(cap, -1, dtype=np.int64)  # what each token's seq_id[0] holds now
        self.shape = shape

    def _fill(self, tokens, positions, seqs, flags) -> int:
        """Write one llama_batch: token ids, positions, sequence ids and logits flags."""
        n = len(tokens)
        self._tokens[:n], self._pos[:n], self._flags[:n] = tokens, positions, flags
        for i in np.nonzero(self._seq[:n] != seqs)[0]:  # seq_id arrays are separate allocations
            self._batch.seq_id[int(i)][0] = int(seqs[i])
        self._seq[:n] = seqs
        self._batch.n_tokens = n
        return n

    def _decode(self, n: int, outputs: int | None = None) -> None:
        """Decode the batch's first ``n`` tokens; ``outputs`` (its logits flags) is counted
        unless the caller knows it (a step batch whose flags were written once)."""
        self.last_outputs.append(int(self._flags[:n].sum()) if outputs is None else outputs)
        status = self._lib.llama_decode(self._ctx, self._batch)
        if status != 0:
            raise QuantbenchError(f"llama_decode failed with status {status} ({n} tokens, context {self.shape})")

    def _clear(self) -> None:
        self._lib.llama_memory_clear(self._mem, True)
        self.last_outputs = []

    def _logits_row(self, index: int) -> np.ndarray:
        """The logits of batch token ``index`` (a view on llama.cpp's buffer: copy to keep)."""
        pointer = self._lib.llama_get_logits_ith(self._ctx, index)
        if not pointer:
            raise QuantbenchError(f"llama.cpp returned no logits for batch token {index}")
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    def _feed_rows(self, rows: list[list[int]], wanted) -> list[int]:
        """Write every row as its own sequence from position 0; ``wanted(length)`` gives the token
        indexes (within a row) to compute logits at. Returns each row's first batch index."""
        lengths = [len(r) for r in rows]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)
        flags = np.zeros(sum(lengths), dtype=np.int8)
        for r, length in enumerate(lengths):
            flags[starts[r] + np.asarray(wanted(length), dtype=int)] = 1
        self._fill(np.concatenate(rows).astype(np.int32), np.concatenate([np.arange(n) for n in lengths]),
                   np.repeat(np.arange(len(rows)), lengths), flags)
        return starts.tolist()

    # --- the Variant interface -----------------------------------------------------------------

    def prepare(self, encoding: dict[str, Any]) -> Prompts:
        ids = np.asarray(encoding["input_ids"], dtype=np.int64)
        mask = np.asarray(encoding.get("attention_mask", np.ones_like(ids)))
        columns = [np.nonzero(mask[r])[0] for r in range(ids.shape[0])]
        return Prompts(rows=[ids[r, c].tolist() for r, c in enumerate(columns)], columns=columns, width=ids.shape[1])

    def _scoring_shape(self, rows: list[list[int]], outputs: int) -> ContextShape:
        longest, total = max(len(r) for r in rows), sum(len(r) for r in rows)
        return ContextShape(len(rows), _round_up(longest, CTX_BLOCK), _round_up(total, CTX_BLOCK),
                            max(outputs, len(rows)))

    def forward(self, inputs: Prompts) -> np.ndarray:
        """Logits at every position, (batch, width, vocab) float32; zeros where a row had padding."""
        total = sum(len(r) for r in inputs.rows)
        self._ensure(self._scoring_shape(inputs.rows, _round_up(total, CTX_BLOCK)))
        self._clear()
        starts = self._feed_rows(inputs.rows, np.arange)
        self._decode(total)
        # Every token was flagged, so the output rows are the batch's tokens, in batch order.
        block = np.ctypeslib.as_array(self._lib.llama_get_logits(self._ctx), shape=(total, self.n_vocab))
        out = np.zeros((len(inputs.rows), inputs.width, self.n_vocab), dtype=np.float32)
        for r, row in enumerate(inputs.rows):
            out[r, inputs.columns[r]] = block[starts[r]:starts[r] + len(row)]
        return out

    def logits_at(self, inputs: Prompts, positions: list[int]) -> np.ndarray:
        """Logits of row ``i`` at padded column ``positions[i]``, (batch, vocab): each row is fed
        up to that token only (later tokens cannot change it) and one logits row is computed."""
        cut = []
        for r, position in enumerate(positions):
            found = np.nonzero(inputs.columns[r] == position)[0]
            if not len(found):
                raise QuantbenchError(f"row {r} has no token at position {position} (padding)")
            cut.append(inputs.rows[r][:int(found[0]) + 1])
        self._ensure(self._scoring_shape(cut, len(cut)))
        self._clear()
        starts = self._feed_rows(cut, lambda length: [length - 1])
        self._decode(sum(len(r) for r in cut))
        return np.stack([self._logits_row(starts[r] + len(row) - 1).copy() for r, row in enumerate(cut)])

    def generation_shape(self, rows: list[list[int]], new_tokens: int) -> ContextShape:
        """The context a generate of these rows runs in: one sequence and one logits row per row."""
        longest = max(len(r) for r in rows)
        return ContextShape(len(rows), _round_up(longest + new_tokens, CTX_BLOCK),
                            _round_up(sum(len(r) for r in rows), CTX_BLOCK), len(rows))

    def generate(self, inputs: Prompts, *, new_tokens: int, logits_processor: Any = None,
                 stop_at_eos: bool = False) -> np.ndarray:
        """Greedy, exactly ``new_tokens`` per row (EOS ignored); returns (batch, new_tokens) int64.

        Each processor is called as ``processor(None, None)`` as soon as a step's logits are
        ready, before the argmax: the first call marks the end of prefill. ``stop_at_eos`` stops
        once every row has made an end-of-generation token (fewer columns come back; the argmax
        never suppresses EOS, so the tokens up to it are the same).
        """
        lib = self._lib
        rows, processors, n = inputs.rows, list(logits_processor or []), len(inputs.rows)
        vocab = lib.llama_model_get_vocab(self._model) if stop_at_eos else None
        ended = np.zeros(n, dtype=bool)
        self._ensure(self.generation_shape(rows, new_tokens))
        self._clear()
        lib.llama_perf_context_reset(self._ctx)
        positions = np.asarray([len(r) for r in rows], dtype=np.int32)
        starts = self._feed_rows(rows, lambda length: [length - 1])
        self._decode(int(positions.sum()))
        out = np.empty((n, new_tokens), dtype=np.int64)
        for step in range(new_tokens):
            lib.llama_synchronize(self._ctx)
            for processor in processors:
                processor(None, None)
            if step == 0:  # the prefill's logits rows are each sequence's last prompt token
                out[:, 0] = [int(self._logits_row(s + k - 1).argmax()) for s, k in zip(starts, positions.tolist())]
            else:  # a step's batch is token i of sequence i, every one with logits: rows in order
                out[:, step] = self._step_logits(n).argmax(axis=1)
            if vocab is not None:
                ended |= [bool(lib.llama_vocab_is_eog(vocab, int(t))) for t in out[:, step]]
                if ended.all():
                    out = out[:, :step + 1]
                    break
            if step + 1 == new_tokens:
                break
            if step == 0:  # sequence ids and logits flags of the step batch are written once
                self._fill(out[:, 0], positions, np.arange(n), np.ones(n, dtype=np.int8))
                self._decode(n)
                continue
            # Later steps write only the new tokens and move each position on by one: the Python
            # between two decodes is time the harness's clock sees and llama.cpp's does not.
            self._tokens[:n] = out[:, step]
            self._pos[:n] += 1
            self._decode(n, outputs=self.last_outputs[-1])
        self.last_perf = self.perf()
        return out

    def _step_logits(self, n: int) -> np.ndarray:
        """The (n, vocab) logits of a step batch: one row per sequence, in batch order."""
        return np.ctypeslib.as_array(self._lib.llama_get_logits(self._ctx), shape=(n, self.n_vocab))

    def perf(self) -> dict[str, Any]:
        """llama.cpp's counters since the last reset. It files a decode of one token under eval
        and any larger one under prompt eval, so at batch > 1 every step is "prompt eval"; its
        counts read 1 when nothing ran (it divides by them)."""
        data = self._lib.llama_perf_context(self._ctx)
        return {"t_p_eval_ms": float(data.t_p_eval_ms), "t_eval_ms": float(data.t_eval_ms),
                "n_p_eval": int(data.n_p_eval), "n_eval": int(data.n_eval)}

    def to_numpy(self, logits: Any) -> np.ndarray:
        return np.asarray(logits, dtype=np.float32)

    def synchronize(self) -> None:
        """Nothing queued: every call above waits for llama.cpp before it returns."""

    def _free_context(self) -> None:
        lib = self._lib
        if self._batch is not None:
            lib.llama_batch_free(self._batch)
        if self._ctx:
            lib.llama_free(self._ctx)
        self._ctx = self._batch = self._mem = None
        self.shape = None

    def close(self) -> None:
        if getattr(self, "_model", None):
            self._free_context()
            self._lib.llama_model_free(self._model)
            self._model = None

"""Does the harness add time to llama.cpp decoding? Its decode time per token against a bare loop.

Not part of the sweeps (the name does not match ``test_*.py``); run it explicitly::

    pytest tests/overhead/check_llamacpp_overhead.py --suite llm --backend llamacpp --quant q8_0 --batch-size 1

Each harness round (the exact timed call of ``test_generation``: the variant's ``generate``
with the step-timing processor) is preceded, untimed by pytest-benchmark, by one bare round
on a separately loaded ``llama_cpp.Llama`` of the same GGUF file, with the same prompt ids,
threads and context size: ``eval(prompt)``, then ``eval([token])`` one token at a time with
the argmax of the last logits, timed with ``time.perf_counter``. The bare decode time per
token is (end - first token) / (new_tokens - 1), the same definition as the harness's TPOT.
Interleaving puts both under the same machine noise, and the ratio is the median of the
per-round ratios (each harness round over the bare round just before it), so a noisy minute
moves both sides of one ratio. The check runs at least ``MIN_ROUNDS`` rounds whatever the
suite says (the llm suite's 2 to 4 rounds left the ratio at the mercy of one slow round).
``Llama`` runs one sequence, so only batch-1 cells are checked.
"""

import dataclasses
import statistics
import time

import numpy as np
import pytest

from quantbench.runner.generation import measure_generation
from quantbench.tasks.generation.task import TASK

LIMIT = 1.03
MIN_ROUNDS = 12


def _bare_model(path: str, threads: int, n_ctx: int):
    from llama_cpp import Llama

    # flash_attn=False and F16 KV are Llama's defaults and the variant's settings.
    return Llama(model_path=path, n_threads=threads, n_threads_batch=threads, n_ctx=n_ctx, n_gpu_layers=0,
                 logits_all=False, verbose=False)


def _eval_ms(ctx) -> float:
    """llama.cpp's own decode time per token since its last reset (its counters)."""
    import llama_cpp

    data = llama_cpp.llama_perf_context(ctx)
    return data.t_eval_ms / data.n_eval


def _bare_round(llm, prompt: list[int], new_tokens: int) -> tuple[float, float]:
    """One greedy generation of ``new_tokens``: its decode seconds per token by the clock, and
    llama.cpp's own decode milliseconds per token."""
    import llama_cpp

    def next_token() -> int:
        logits = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        return int(np.ctypeslib.as_array(logits, shape=(llm.n_vocab(),)).argmax())

    llm.reset()
    llama_cpp.llama_perf_context_reset(llm.ctx)
    llm.eval(prompt)
    token = next_token()
    first = time.perf_counter()
    for _ in range(new_tokens - 1):
        llm.eval([token])
        token = next_token()
    return (time.perf_counter() - first) / (new_tokens - 1), _eval_ms(llm.ctx)


def test_llamacpp_decode_overhead(generation_cell, benchmark, quantbench_run, quantbench_pool, before_each_round):
    cell = generation_cell
    if cell.backend != "llamacpp" or cell.batch_size != 1 or cell.new_tokens < 2:
        pytest.skip("the bare loop (llama_cpp.Llama) runs one sequence: llamacpp cells at batch 1 with new_tokens > 1")
    res = quantbench_run.for_cell(cell, timed=False)
    variant = quantbench_pool.get(cell, res.source, res.settings).variant
    encoding = TASK.cell_inputs(quantbench_run.splits, quantbench_run.tokenizer(cell.model), cell)
    prompt = [int(t) for t in encoding["input_ids"][0]]
    n_ctx = variant.generation_shape([prompt], cell.new_tokens).n_ctx_seq
    llm = _bare_model(variant.info.artifact, variant.threads, n_ctx)
    bare: list[tuple[float, float]] = []
    harness_eval: list[float] = []  # llama.cpp's counters for each harness round
    def bare_round():
        if bare:  # the harness round before this one
            harness_eval.append(variant.last_perf["t_eval_ms"] / variant.last_perf["n_eval"])
        bare.append(_bare_round(llm, prompt, cell.new_tokens))

    before_each_round(bare_round)
    suite = quantbench_run.suite
    measure = suite.measure
    quantbench_run.suite = dataclasses.replace(suite, measure=dataclasses.replace(
        measure, min_rounds=max(measure.min_rounds, MIN_ROUNDS), max_rounds=max(measure.max_rounds, MIN_ROUNDS)))
    try:
        _bare_round(llm, prompt, cell.new_tokens)  # warm, as the harness warms its variant
        extra = measure_generation(benchmark, quantbench_run, quantbench_pool, cell)
    finally:
        quantbench_run.suite = suite
        llm.close()
    bare_tpot_ms = statistics.median(b[0] for b in bare) * 1000
    harness_tpot_s = extra["tpot_ms"]["raw_s"]
    assert len(harness_tpot_s) == len(bare), (len(harness_tpot_s), len(bare))
    ratio = statistics.median(h / b[0] for h, b in zip(harness_tpot_s, bare))
    # Inside llama.cpp: where the two differ in llama.cpp's own time, the harness's Python is not the cause.
    eval_ratio = statistics.median(harness_eval) / statistics.median(b[1] for b in bare) if harness_eval else None
    benchmark.extra_info.update(bare_tpot_ms=round(bare_tpot_ms, 4), decode_overhead_ratio=round(ratio, 4),
                                paired_rounds=len(bare),
                                llama_eval_ratio=eval_ratio and round(eval_ratio, 4))
    print(f"\n{cell.id}: harness decode {extra['tpot_p50_ms']:.2f} ms/token, bare llama_cpp.Llama "
          f"{bare_tpot_ms:.2f} ms/token, median paired ratio {ratio:.3f} over {len(bare)} rounds; "
          f"llama.cpp's own eval time ratio {eval_ratio or float('nan'):.3f}")
    assert ratio <= LIMIT

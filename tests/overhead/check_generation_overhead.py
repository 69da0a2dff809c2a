"""Does the harness add time to decoding? Its decode time per token against a bare generate loop.

Not part of the sweeps (the name does not match ``test_*.py``); run it explicitly::

    pytest tests/overhead/check_generation_overhead.py --suite llm --quant fp32 --backend pytorch --batch-size 1

Each harness round (the exact timed call of ``test_generation``: generate with the step-timing
logits processor) is preceded, untimed by pytest-benchmark, by two bare rounds on a separately
loaded copy of the same checkpoint with the same prompts: ``generate(max_new_tokens=n)`` and
``generate(max_new_tokens=1)``, timed with ``time.perf_counter`` and no processor. The bare
decode time per token is (median T_n - median T_1) / (n - 1), the fallback optimum-benchmark
uses when it cannot time steps. Interleaving puts both under the same machine noise.
"""

import statistics
import time

import pytest
import torch

from quantbench.runner.generation import measure_generation
from quantbench.tasks.generation.task import TASK

LIMIT = 1.03


def test_decode_overhead(generation_cell, benchmark, quantbench_run, quantbench_pool, before_each_round):
    cell = generation_cell
    if cell.backend != "pytorch" or cell.device != "cpu" or cell.quant != "fp32" or cell.new_tokens < 2:
        # The bare copy is the plain checkpoint: against a quantized variant it would time another model.
        pytest.skip("the bare loop is written for fp32 pytorch generation cells on the CPU with new_tokens > 1")
    from transformers import AutoModelForCausalLM

    bare_model = AutoModelForCausalLM.from_pretrained(quantbench_run.source(cell.model).path).eval()
    encoding = TASK.cell_inputs(quantbench_run.splits, quantbench_run.tokenizer(cell.model), cell)
    bare_inputs = {k: torch.as_tensor(v) for k, v in encoding.items()}
    res = quantbench_run.for_cell(cell, timed=False)
    pad = quantbench_pool.get(cell, res.source, res.settings).variant.pad_token_id
    bare_n, bare_1 = [], []

    def bare_generate(tokens: int, into: list) -> None:
        with torch.inference_mode():
            started = time.perf_counter()
            bare_model.generate(**bare_inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                                pad_token_id=pad)
            into.append(time.perf_counter() - started)

    def bare_rounds():
        bare_generate(cell.new_tokens, bare_n)
        bare_generate(1, bare_1)

    before_each_round(bare_rounds)
    extra = measure_generation(benchmark, quantbench_run, quantbench_pool, cell)
    bare_tpot_ms = (statistics.median(bare_n) - statistics.median(bare_1)) / (cell.new_tokens - 1) * 1000
    ratio = extra["tpot_p50_ms"] / bare_tpot_ms
    benchmark.extra_info.update(bare_tpot_ms=round(bare_tpot_ms, 4), decode_overhead_ratio=round(ratio, 4))
    print(f"\n{cell.id}: harness decode {extra['tpot_p50_ms']:.2f} ms/token, bare {bare_tpot_ms:.2f} ms/token, "
          f"ratio {ratio:.3f} over {extra['rounds']} rounds")
    assert ratio <= LIMIT

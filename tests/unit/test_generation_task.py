"""The generation task's own arithmetic, on fakes: prompts, step timing, quality figures, cells."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quantbench import cells
from quantbench.errors import QuantbenchError, SuiteError
from quantbench.runner.generation import generation_figures, warmup_cell
from quantbench.quality.lm_scoring import (continuation_agreement, divergence_figures, perplexity_figures,
                                                score_texts)
from quantbench.quality.zero_shot import label_logliks
from quantbench.suite import parse_suite
from quantbench.tasks.generation.task import TASK, StepTimer


class WordTokenizer:
    """Every word is one token (id = word length + 10); BOS is 1, EOS 2."""

    bos_token_id, eos_token_id = 1, 2

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [10 + len(w) for w in text.split()]}


class UniformLM:
    """Equal logits over ``vocab`` tokens at every position: perplexity is exactly ``vocab``."""

    pad_token_id = 0

    def __init__(self, vocab=50, bias=None):
        self.vocab, self.bias = vocab, bias

    def prepare(self, encoding):
        return encoding

    def forward(self, inputs):
        import torch

        batch, length = np.asarray(inputs["input_ids"]).shape
        logits = torch.zeros(batch, length, self.vocab)
        if self.bias is not None:
            logits[..., self.bias] = 3.0
        return logits

    def logits_at(self, inputs, positions):
        import torch

        return self.forward(inputs)[torch.arange(len(positions)), torch.as_tensor(positions)]


def test_prompts_are_exact_length_real_text_rows_that_differ():
    texts = ["a bb ccc", "dddd e", "ff ggg hhhh iiiii", "j k l m n o p"]
    ids = TASK.prompt_ids(texts, WordTokenizer(), prompt_len=5, rows=2)
    assert ids.shape == (2, 5)
    assert (ids[:, 0] == 1).all()  # BOS first
    # Row 0 starts at text 0 (a bb ccc), row 1 at text 1 (dddd e): joined texts, cut to 5.
    assert ids[0].tolist() == [1, 11, 12, 13, 14]
    assert ids[1].tolist() == [1, 14, 11, 12, 13]
    with pytest.raises(QuantbenchError, match="too little text for 3 prompts of 40 tokens"):
        TASK.prompt_ids(texts, WordTokenizer(), prompt_len=40, rows=3)
    # Only the texts the prompts read are tokenized (a split holds thousands; each cell asks).
    seen = []

    class Counting(WordTokenizer):
        def __call__(self, text, add_special_tokens=False):
            seen.append(text)
            return super().__call__(text, add_special_tokens)

    again = TASK.prompt_ids(texts * 1000, Counting(), prompt_len=5, rows=2)
    assert again.tolist() == ids.tolist() and seen == ["a bb ccc\n", "dddd e\n", "ff ggg hhhh iiiii\n"]


def test_step_timer_splits_prefill_from_decode():
    timer = StepTimer(lambda: None)
    timer.start()
    timer.started = 100.0
    timer.stamps = [100.5, 100.6, 100.7, 100.8, 100.9]
    timer.finish(5)
    assert timer.ttft_s == [pytest.approx(0.5)]
    assert timer.tpot_s == [pytest.approx(0.1)]
    timer.stamps = [1.0, 2.0]
    with pytest.raises(QuantbenchError, match="generate made 2 steps, expected 5"):
        timer.finish(5)


def test_generation_figures_count_decode_tokens_after_the_first():
    cell = cells.Cell("m", "d", "fp32", "pytorch", "cpu", 8, 64, task="text-generation", new_tokens=32)
    out = generation_figures([2.0, 2.0, 2.2], ttft_s=[0.4, 0.5, 0.6], tpot_s=[0.05, 0.05, 0.06], cell=cell)
    assert out["ttft_p50_ms"] == pytest.approx(500.0)
    assert out["tpot_p50_ms"] == pytest.approx(50.0)
    assert out["decode_tokens_per_s"] == pytest.approx(8 / 0.05)
    assert out["total_tokens_per_s"] == pytest.approx(8 * 32 / 2.0)
    assert out["prefill_tokens_per_s"] == pytest.approx(8 * 64 / 0.5)
    assert out["ttft_ms"]["raw_s"] == [0.4, 0.5, 0.6] and len(out["tpot_ms"]["raw_s"]) == 3
    assert "throughput_samples_per_s" not in out


def test_ttft_pools_generate_and_prefill_only_rounds_and_itl_reads_every_step():
    cell = cells.Cell("m", "d", "fp32", "pytorch", "cpu", 1, 64, task="text-generation", new_tokens=4)
    steps = [0.01, 0.01, 0.01, 0.01, 0.01, 0.05]  # 2 rounds x 3 decode steps, one slow step
    out = generation_figures([1.0, 1.0], ttft_s=[0.2, 0.2], tpot_s=[0.01, 0.0233], cell=cell, step_s=steps,
                             prefill_s=[0.1, 0.1, 0.1])
    assert out["ttft_ms"]["raw_s"] == [0.2, 0.2, 0.1, 0.1, 0.1]
    assert (out["ttft_ms"]["generate_rounds"], out["ttft_ms"]["prefill_only_rounds"]) == (2, 3)
    assert out["ttft_p50_ms"] == pytest.approx(100.0)
    assert out["itl_p50_ms"] == pytest.approx(10.0) and out["itl_ms"]["steps"] == 6
    assert out["itl_p99_ms"] == pytest.approx(float(np.percentile(steps, 99)) * 1000)
    assert "raw_s" not in out["itl_ms"]  # the steps are kept once, in tpot_ms.steps_s


def test_perplexity_bits_per_byte_and_kl_on_a_known_distribution():
    texts = ["a bb ccc", "dddd e ff"]
    uniform = score_texts(UniformLM(), WordTokenizer(), texts, batch_size=1, max_len=64, mode="alone",
                          keep_logprobs=True)
    assert uniform.tokens == 6  # every text token predicted, the first from BOS
    assert uniform.perplexity == pytest.approx(50.0)
    assert uniform.bits_per_byte == pytest.approx(6 * math.log(50) / (math.log(2) * (8 + 9)))
    ppl = perplexity_figures(uniform)
    assert ppl["perplexity_se"] == 0.0 and ppl["perplexity_ci95"] == [50.0, 50.0]  # every token equally likely
    reference = list(uniform.logprobs)
    same = score_texts(UniformLM(), WordTokenizer(), texts, batch_size=2, max_len=64, mode="served",
                       reference=reference)
    figures = divergence_figures(same, uniform)
    assert figures["kl_divergence"] == pytest.approx(0.0, abs=1e-6)
    assert figures["perplexity_delta_pct"] == pytest.approx(0.0, abs=1e-6)
    assert figures["ppl_ratio"] == pytest.approx(1.0) and figures["delta_p_rms"] == pytest.approx(0.0, abs=1e-7)
    skewed = score_texts(UniformLM(bias=7), WordTokenizer(), texts, batch_size=2, max_len=64, mode="exact-length",
                         reference=reference)
    figures = divergence_figures(skewed, uniform)
    # KL(uniform || q) with q putting e^3 weight on one of 50 tokens: log(Z/50) - 3/50 per position.
    z = 49 + math.exp(3)
    assert figures["kl_divergence"] == pytest.approx(math.log(z / 50) - 3 / 50, rel=1e-4)
    assert figures["kl_divergence_max"] == pytest.approx(figures["kl_divergence"], rel=1e-4)  # same at every token
    assert figures["perplexity_delta_pct"] > 0
    # No text token is 7, so the variant gives each true token 1/Z instead of 1/50: Δp is known exactly.
    assert figures["delta_p_mean"] == pytest.approx(1 / z - 1 / 50, rel=1e-4)
    assert figures["delta_p_rms"] == pytest.approx(abs(1 / z - 1 / 50), rel=1e-4)
    assert figures["ppl_ratio"] == pytest.approx(z / 50, rel=1e-4)
    assert figures["ln_ppl_ratio"] == pytest.approx(math.log(z / 50), rel=1e-4)
    assert figures["top1_agreement"] < 1.0


def test_scoring_is_the_same_alone_in_exact_length_buckets_and_in_any_text_order():
    """Per-text results land in text order whatever the grouping, so the KL lines up with fp32's."""
    texts = ["a bb ccc", "dddd e ff", "g hh", "ii jj kk"]
    alone = score_texts(UniformLM(bias=12), WordTokenizer(), texts, batch_size=1, max_len=64, mode="alone",
                        keep_logprobs=True)
    bucketed = score_texts(UniformLM(bias=12), WordTokenizer(), texts, batch_size=4, max_len=64,
                           mode="exact-length", reference=list(alone.logprobs))
    assert [len(x) for x in bucketed.nll] == [len(x) for x in alone.nll] == [3, 3, 2, 3]
    np.testing.assert_allclose(bucketed.token_nll, alone.token_nll, rtol=1e-6)
    assert divergence_figures(bucketed, alone)["kl_divergence"] == pytest.approx(0.0, abs=1e-6)


def test_continuation_agreement_counts_tokens_before_the_first_difference():
    ref = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    out = continuation_agreement(np.array([[1, 2, 9, 4], [5, 6, 7, 8]]), ref)
    assert out["continuation_agreement"] == pytest.approx((2 / 4 + 1.0) / 2)
    assert out["continuation_exact_match"] == pytest.approx(0.5)


def test_zero_shot_label_logliks_read_the_label_token_after_the_prompt():
    class Tokenizer(WordTokenizer):
        def __call__(self, text, add_special_tokens=False):
            if text in (" positive", " negative"):
                return {"input_ids": [3 if "pos" in text else 4]}
            return super().__call__(text)

    out = label_logliks(UniformLM(bias=3), Tokenizer(), ["good day"], ["negative", "positive"], batch_size=4,
                        max_len=64, mode="exact-length")
    assert out.shape == (1, 2)
    assert out[0, 1] > out[0, 0]  # the biased token (3) is " positive"


def test_zero_shot_reads_each_prompts_own_last_position_in_a_padded_batch():
    class Tokenizer(WordTokenizer):
        def __call__(self, text, add_special_tokens=False):
            if text in (" positive", " negative"):
                return {"input_ids": [3 if "pos" in text else 4]}
            return super().__call__(text)

    class LastTokenLM(UniformLM):
        """Favours " positive" (3) at each row's last real token and " negative" (4) everywhere else."""

        def forward(self, inputs):
            import torch

            mask = torch.as_tensor(np.asarray(inputs["attention_mask"]))
            logits = torch.zeros(*mask.shape, self.vocab)
            logits[..., 4] = 3.0
            last = mask.sum(1) - 1
            logits[torch.arange(len(last)), last, 4] = 0.0
            logits[torch.arange(len(last)), last, 3] = 3.0
            return logits

    texts = ["good day", "a much longer tweet than the first one by far"]
    out = label_logliks(LastTokenLM(), Tokenizer(), texts, ["negative", "positive"], batch_size=2, max_len=64,
                        mode="served")
    assert (out[:, 1] > out[:, 0]).all()  # the short row read its own end, not the padding after it


def _llm_suite(**extra):
    data = {"models": [{"name": "lm", "source": "path", "path": ".", "task": "text-generation"},
                       {"name": "clf", "source": "path", "path": "."}],
            "dataset": {"source": "csv", "path": "x.csv"}, "batch_sizes": [1, 8], "prompt_lens": [16, 64],
            "new_tokens": [8], "seq_lens": [32]}
    data.update(extra)
    return parse_suite(data, where="s.yaml")


def test_generation_cells_have_prompt_and_new_token_axes_and_readable_ids():
    suite = _llm_suite()
    gen = [p.cell for p in cells.expand(suite, task="text-generation")]
    assert {c.id for c in gen} == {f"lm-x-fp32-pytorch-cpu-bs{b}-p{p}-n8" for b in (1, 8) for p in (16, 64)}
    assert gen[0].params() == {"model": "lm", "quant": "fp32", "backend": "pytorch", "device": "cpu",
                               "batch_size": 1, "prompt_len": 16, "new_tokens": 8, "task": "text-generation"}
    clf = [p.cell.id for p in cells.expand(suite, task="text-classification")]
    assert clf == ["clf-x-fp32-pytorch-cpu-bs1-seq32", "clf-x-fp32-pytorch-cpu-bs8-seq32"]
    # A prompt-length filter narrows generation cells and leaves classification cells alone.
    narrowed = cells.expand(suite, {"prompt_len": (64,)})
    assert sorted(p.cell.id for p in narrowed if p.cell.is_generation) == [
        "lm-x-fp32-pytorch-cpu-bs1-p64-n8", "lm-x-fp32-pytorch-cpu-bs8-p64-n8"]
    assert len([p for p in narrowed if not p.cell.is_generation]) == 2
    excluded = cells.expand(_llm_suite(exclude=[{"task": "text-generation", "batch_size": 8}]))
    assert not any(p.cell.is_generation and p.cell.batch_size == 8 for p in excluded)


def test_suite_task_errors_name_the_value_and_the_allowed_ones():
    with pytest.raises(SuiteError, match=r"models\[0\]\.task: 'chat' is not allowed; allowed values: "
                                         r"text-classification, text-generation"):
        parse_suite({"models": [{"name": "m", "task": "chat"}]}, where="s.yaml")
    with pytest.raises(SuiteError, match=r"models\[0\]\.embedded: the embedded model 'minilm-tweets' is a "
                                         r"text-classification model, not text-generation"):
        parse_suite({"models": [{"name": "m", "task": "text-generation", "embedded": "minilm-tweets"}]},
                    where="s.yaml")
    old = parse_suite({"models": [{"name": "m", "task": "sequence-classification"}]}, where="s.yaml")
    assert old.models[0].task == "text-classification"
    assert parse_suite({"models": [{"name": "m", "task": "text-generation"}]}, where="s").models[0].location == "smollm2"


def test_shape_filters_keep_the_per_variant_cells():
    suite = _llm_suite()
    kept = cells.expand(suite, {"batch_size": (1,), "prompt_len": (16,), "seq_len": (32,)}, per_variant=True)
    assert {p.cell.model for p in kept} == {"lm", "clf"}


def test_prefill_rounds_are_a_measure_setting_with_a_clear_error():
    assert _llm_suite().measure.prefill_rounds == 3
    assert _llm_suite(measure={"prefill_rounds": 0}).measure.prefill_rounds == 0
    with pytest.raises(SuiteError, match=r"measure.prefill_rounds: must be 0 or more, got -1"):
        _llm_suite(measure={"prefill_rounds": -1})


def test_warm_up_generates_a_few_tokens():
    assert _llm_suite().measure.warmup_new_tokens == 2
    assert _llm_suite(measure={"warmup_new_tokens": None}).measure.warmup_new_tokens is None
    with pytest.raises(SuiteError, match=r"measure.warmup_new_tokens: must be 2 or more .* got 1"):
        _llm_suite(measure={"warmup_new_tokens": 1})
    cell = next(p.cell for p in cells.expand(_llm_suite(), task="text-generation"))  # 8 new tokens
    assert warmup_cell(cell, 2).new_tokens == 2
    assert (warmup_cell(cell, 2).batch_size, warmup_cell(cell, 2).seq_len) == (cell.batch_size, cell.seq_len)
    assert warmup_cell(cell, None) is cell and warmup_cell(cell, 50) is cell

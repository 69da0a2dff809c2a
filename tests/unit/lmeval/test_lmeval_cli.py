"""``quantbench lm-eval``: lm-eval's own command line, with the quantbench model registered."""

from __future__ import annotations

import argparse
import json

import pytest

from quantbench.cli import main
from quantbench.lmeval.commands import lm_eval_argv, with_defaults
from tests.tiny import tiny_suite, write_suite

pytest.importorskip("lm_eval")


@pytest.fixture
def suite_path(tmp_path, tiny_llama, tiny_data, isolated_cache):
    suite = tiny_suite(tiny_llama, tiny_data, quantization=["fp32"])
    suite["models"] = [{"name": "tinylm", "source": "path", "path": str(tiny_llama), "task": "text-generation"}]
    return write_suite(tmp_path / "suite.yaml", suite)


@pytest.fixture
def local_task(tmp_path):
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "docs.jsonl").write_text("".join(json.dumps({"text": t, "label": i % 2}) + "\n"
                                               for i, t in enumerate(["the movie was", "my friend is", "he is"])))
    (folder / "tiny_choice.yaml").write_text(
        "task: tiny_choice\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    test: {folder / 'docs.jsonl'}\ntest_split: test\noutput_type: multiple_choice\n"
        'doc_to_text: "{{text}}"\ndoc_to_choice: ["good", "bad"]\ndoc_to_target: label\n')
    return folder


def test_runs_lm_evals_cli_on_a_suites_variant(suite_path, local_task, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["lm-eval", "--model_args", f"suite={suite_path},quant=fp32,backend=pytorch", "--tasks",
                 "tiny_choice", "--include_path", str(local_task), "--output_path", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "|tiny_choice|" in printed and "quantbench (" in printed  # lm-eval's own table, our model
    [saved] = out.rglob("results_*.json")
    results = json.loads(saved.read_text())
    assert results["n-samples"]["tiny_choice"]["effective"] == 3
    assert results["config"]["quantbench_variant"] == "tinylm-toy-fp32-pytorch-cpu"
    assert results["config"]["device"] == "cpu" and results["config"]["batch_size"] == "auto"


def test_defaults_fill_only_what_is_not_given():
    assert lm_eval_argv(["--model", "hf"]) == ["run", "--model", "hf"]
    assert lm_eval_argv(["ls", "tasks"]) == ["ls", "tasks"]
    given = argparse.Namespace(model="quantbench", model_args={"suite": "llm"}, tasks=["arc_easy"], batch_size=8,
                               device="cuda:0", include_path="/tasks")
    assert vars(with_defaults(given)) == {"model": "quantbench", "model_args": {"suite": "llm"}, "tasks": ["arc_easy"],
                                          "batch_size": 8, "device": "cuda:0", "include_path": "/tasks"}
    bare = with_defaults(argparse.Namespace(model=None, model_args=None, tasks=["arc_easy"], device=None,
                                            include_path=None))
    assert (bare.model, bare.batch_size, bare.device) == ("quantbench", "auto", "cpu")


def test_the_shipped_task_on_another_dataset_is_one_line(suite_path, capsys):
    code = main(["lm-eval", "--model_args", f"suite={suite_path}", "--tasks", "tweets_sentiment"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("quantbench lm-eval: error: the shipped lm-eval task tweets_sentiment reads the embedded "
                          "tweets") and err.count("\n") == 1

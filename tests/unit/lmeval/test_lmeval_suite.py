"""quality.lm_eval in suites: parsed, resolved relative to the suite, and every mistake one line."""

from __future__ import annotations

import pytest

from quantbench.errors import SuiteError
from quantbench.suite import load_suite, parse_suite
from tests.tiny import write_suite

LLM = {"models": [{"name": "m", "task": "text-generation"}]}


def parse(data):
    return parse_suite(data, where="s.yaml")


def test_a_suite_without_the_section_runs_no_lm_eval():
    assert parse(LLM).quality.lm_eval is None


def test_the_section_is_read_whole():
    settings = parse({**LLM, "quality": {"lm_eval": {"tasks": ["tweets_sentiment", "arc_easy"], "limit": 100,
                                                      "num_fewshot": 0}}}).quality.lm_eval
    assert settings.tasks == ("tweets_sentiment", "arc_easy") and settings.limit == 100
    assert settings.num_fewshot == 0 and settings.include_path == ()
    assert parse({**LLM, "quality": {"lm_eval": {"tasks": "t", "limit": 0.25}}}).quality.lm_eval.limit == 0.25


@pytest.mark.parametrize(("section", "message"), [
    ({"limit": 10}, "s.yaml: quality.lm_eval.tasks: is required: the lm-eval task names to run (e.g. [tweets_sentiment])"),
    ({"tasks": []}, "s.yaml: quality.lm_eval.tasks: must not be empty"),
    ({"tasks": ["t", "t"]}, "s.yaml: quality.lm_eval.tasks: has duplicates: ['t', 't']"),
    ({"tasks": ["t"], "limit": 0}, "s.yaml: quality.lm_eval.limit: must be a positive whole number of documents or a "
                                   "fraction below 1, got 0"),
    ({"tasks": ["t"], "limit": 2.5}, "s.yaml: quality.lm_eval.limit: must be a positive whole number of documents "
                                     "or a fraction below 1, got 2.5"),
    ({"tasks": ["t"], "num_fewshot": -1}, "s.yaml: quality.lm_eval.num_fewshot: must be 0 or more, got -1"),
    ({"tasks": ["t"], "shots": 5}, "s.yaml: quality.lm_eval.shots: unknown key; allowed keys: tasks, include_path, "
                                   "limit, num_fewshot"),
    ({"tasks": ["t"], "include_path": [3]}, "s.yaml: quality.lm_eval.include_path[0]: expected a folder path, got 3"),
])
def test_each_mistake_is_one_line(section, message):
    with pytest.raises(SuiteError) as info:
        parse({**LLM, "quality": {"lm_eval": section}})
    assert str(info.value) == message


def test_lm_eval_needs_a_generation_model():
    with pytest.raises(SuiteError, match=r"^s.yaml: quality.lm_eval: needs a text-generation model; this suite has none$"):
        parse({"models": [{"name": "m"}], "quality": {"lm_eval": {"tasks": ["t"]}}})


def test_a_budget_on_an_lm_eval_figure_names_a_task_the_suite_runs():
    suite = parse({**LLM, "quality": {"lm_eval": {"tasks": ["t"]}},
                   "quality_budget": {"kl_divergence": 0.05, "lm_eval.t.acc_delta_min": -0.02}})
    assert suite.quality_budget == {"kl_divergence": 0.05, "lm_eval.t.acc_delta_min": -0.02}
    with pytest.raises(SuiteError) as info:
        parse({**LLM, "quality_budget": {"lm_eval.t.acc_delta_min": -0.02}})
    assert str(info.value) == ("s.yaml: quality_budget.lm_eval.t.acc_delta_min: names lm-eval task 't', which "
                               "quality.lm_eval.tasks does not run (none)")
    with pytest.raises(SuiteError, match=r"quality_budget.lm_eval.t.acc_min: unknown key; .*_delta_min / _delta_max"):
        parse({**LLM, "quality": {"lm_eval": {"tasks": ["t"]}}, "quality_budget": {"lm_eval.t.acc_min": 0.5}})


def test_include_paths_are_relative_to_the_suite_file_and_must_exist(tmp_path):
    (tmp_path / "tasks").mkdir()
    path = write_suite(tmp_path / "s.yaml", {**LLM, "quality": {"lm_eval": {"tasks": ["t"], "include_path": "tasks"}}})
    assert load_suite(str(path)).quality.lm_eval.include_path == (str((tmp_path / "tasks").resolve()),)
    missing = write_suite(tmp_path / "m.yaml", {**LLM, "quality": {"lm_eval": {"tasks": ["t"], "include_path": ["nope"]}}})
    with pytest.raises(SuiteError, match=r"m.yaml: quality.lm_eval.include_path: not a folder: nope \("):
        load_suite(str(missing))

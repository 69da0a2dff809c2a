"""The kinds of model a suite can benchmark, and the Hugging Face facts about each.

A task's name, the ``transformers`` Auto class that loads its checkpoints, and the architectures
that fit it sit here, below everything that reads a suite or builds a variant: the suite checks
its task names against :func:`names`, and a runtime picks its model class from :func:`kind`
without importing the task packages above it (``quantbench.tasks`` holds each task's inputs and
timed call).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from quantbench.errors import QuantbenchError, UnknownNameError

CLASSIFICATION = "text-classification"
GENERATION = "text-generation"
#: Older suites said ``sequence-classification``: it still reads as text-classification.
ALIASES = {"sequence-classification": CLASSIFICATION}


class ArchitectureMismatch(QuantbenchError):
    """A checkpoint whose architecture does not fit the suite's task."""


@dataclass(frozen=True)
class TaskKind:
    name: str
    auto_class: str  # transformers Auto class, e.g. "AutoModelForCausalLM"
    architecture_suffixes: tuple[str, ...]  # config.architectures entries that fit: "ForCausalLM"
    pipeline_tag: str
    causal: bool  # a causal LM: generate, KV cache, lm_head

    def model_class(self):
        import transformers

        return getattr(transformers, self.auto_class)


KINDS = {
    CLASSIFICATION: TaskKind(CLASSIFICATION, "AutoModelForSequenceClassification", ("ForSequenceClassification",),
                             "text-classification", causal=False),
    GENERATION: TaskKind(GENERATION, "AutoModelForCausalLM", ("ForCausalLM", "LMHeadModel"), "text-generation",
                         causal=True),
}


def names() -> tuple[str, ...]:
    return tuple(KINDS)


def canonical(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in KINDS:
        raise UnknownNameError(f"unknown task {name!r}; known: {', '.join(KINDS)}")
    return name


def kind(name: str) -> TaskKind:
    return KINDS[canonical(name)]


def is_causal(name: str) -> bool:
    return kind(name).causal


def check_architecture(config, *, task: str, model: str, path: Path | str) -> None:
    """Refuse a checkpoint whose saved head is of another task (named in one line)."""
    check_architectures(list(getattr(config, "architectures", None) or []), task=task, model=model, path=path)


def check_architectures(architectures: list[str], *, task: str, model: str, path: Path | str) -> None:
    if not architectures:
        return  # a config without a head name (a bare encoder): the Auto class decides
    wanted = kind(task)
    if any(a.endswith(wanted.architecture_suffixes) for a in architectures):
        return
    fitting = [k.name for k in KINDS.values() if any(a.endswith(k.architecture_suffixes) for a in architectures)]
    if fitting:
        hint = f"it fits task {', '.join(map(repr, fitting))}: set the model's task in the suite"
    else:
        # A bare encoder (BertModel) has no head any task could score: no task setting helps.
        hint = ("no task fits a checkpoint without a task head: fine-tune it with a classification head "
                "(AutoModelForSequenceClassification) or use a checkpoint that has one")
    raise ArchitectureMismatch(
        f"model {model!r}: checkpoint {path} is a {', '.join(architectures)}, which does not fit task "
        f"{wanted.name!r} (it needs a *{'/*'.join(wanted.architecture_suffixes)} checkpoint); {hint}")

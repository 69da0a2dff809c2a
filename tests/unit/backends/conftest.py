"""Fixtures the runtimes' build tests share: the tiny classifier as a source, and one encoded row."""

import numpy as np
import pytest

from quantbench.backends.base import BuildSettings, ModelSource
from quantbench.models import fingerprint


@pytest.fixture
def source(tiny_model):
    return ModelSource(name="tiny", path=tiny_model, fingerprint=fingerprint(tiny_model))


@pytest.fixture
def encoding():
    return {"input_ids": np.array([[2, 5, 6, 7, 3, 0]]), "attention_mask": np.array([[1, 1, 1, 1, 1, 0]]),
            "token_type_ids": np.zeros((1, 6), dtype=np.int64)}


def build(builder, source, **options):
    return builder(source, BuildSettings(device="cpu", threads=1, options=options))

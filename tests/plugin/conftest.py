import shutil

import pytest

from tests.conftest import REPO


@pytest.fixture
def bench_dir(pytester):
    """The project's bench/ modules, copied into the pytester folder the sweep runs in."""
    shutil.copytree(REPO / "bench", pytester.path / "bench")
    return pytester.path / "bench"

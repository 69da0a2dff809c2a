"""Which system serves a cell comes from its runtime's ``serving`` field, not from a table of names:
a runtime that names an adapter is served through it (llama.cpp: llama-server), every other one in
process behind the harness's batcher, and a classifier always in process."""

from __future__ import annotations

import pytest

from quantbench import registry
from quantbench.backends.runtime import Method, Runtime
from quantbench.cells import Cell
from quantbench.serving import cell as serving_cell


class ToyAdapter:
    setting_name = "slots"

    def unavailable(self) -> str | None:
        return "the toy server is not installed here"


ADAPTER = ToyAdapter()


@pytest.fixture
def toy_runtime():
    runtime = Runtime(name="toy-served", description="a runtime that brings its own server",
                      methods=(Method("fp32", "quantbench.backends.pytorch.build:build_fp32", ("cpu",)),),
                      serving=f"{__name__}:ADAPTER")
    registry.register_runtime(runtime)
    yield runtime
    registry.unregister_runtime(runtime.name)


def _cell(backend: str, task: str = "text-generation") -> Cell:
    return Cell("m", "d", "fp32", backend, "cpu", 0, 16, True, task, 0, "server")


def test_a_runtime_that_names_an_adapter_is_served_through_it(toy_runtime, monkeypatch):
    monkeypatch.setattr(serving_cell, "missing_loadgen", lambda: None)
    cell = _cell("toy-served")
    assert serving_cell.adapter_for(cell) is ADAPTER
    assert serving_cell.setting_name(cell) == "slots"
    assert serving_cell.unavailable(cell) == "the toy server is not installed here"
    # A classifier of the same runtime is served in process (adapters serve generation).
    assert serving_cell.adapter_for(_cell("toy-served", "text-classification")) is None


def test_runtimes_without_an_adapter_are_served_in_process_and_llamacpp_by_llama_server():
    assert serving_cell.adapter_for(_cell("pytorch")) is None
    assert serving_cell.setting_name(_cell("pytorch")) == "max_batch"
    adapter = serving_cell.adapter_for(_cell("llamacpp"))
    assert type(adapter).__module__ == "quantbench.backends.llamacpp.server"
    assert adapter.setting_name == "parallel"
    assert [r.name for r in registry.runtimes() if r.serving] == ["llamacpp"]

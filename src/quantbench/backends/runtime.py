"""The contract a runtime meets: one :class:`Runtime` object says everything the harness needs.

A runtime package (``quantbench/backends/<runtime>/``, or a third-party module registered through
the ``quantbench.runtimes`` entry-point group) exports one ``RUNTIME``. Its methods name their
builders as ``"module:attr"`` strings, so reading the object imports nothing heavy: a suite is
validated and a sweep planned without torch, ONNX Runtime or OpenVINO. Everything outside
``backends/`` asks the registry for a runtime by its name and reads these fields; none of it
names a runtime.

Standard library only: the registry, the suite and the cells import this at the bottom.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

DEVICES = ("cpu", "cuda", "mps")


def load(target: str) -> Any:
    """The object a ``"module:attr"`` string names (imported now)."""
    module_name, attr = target.split(":")
    return getattr(importlib.import_module(module_name), attr)


def method_builder(build: Callable[..., Any], method: str) -> Callable[..., Any]:
    """The registry's ``build_<method>(source, settings)`` for a runtime whose methods share one
    ``build(method, source, settings)``: a named function per method, so recipes stay ``"module:attr"``."""
    def bound(source, settings):
        return build(method, source, settings)

    bound.__name__ = bound.__qualname__ = f"build_{method}"
    return bound


def importable(module: str) -> bool:
    """Whether ``module`` can be found; a dotted name whose parent package is missing cannot."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _no_sync() -> None:
    return None


@dataclass
class Probe:
    """One call of a compute kernel at one size, as a runtime's kernel probe builds it
    (efficiency/kernels.py times it)."""

    call: Callable[[], Any]
    ops: float  # floating-point or integer operations per call (2·M·K·N for a matmul)
    shape: str  # "MxKxN"
    method: str  # what runs, in words: "torch.ao dynamic quantized Linear (fbgemm)"
    sync: Callable[[], None] = _no_sync
    keep: Any = field(default=None, repr=False)  # operands the call needs alive


@dataclass(frozen=True)
class Kernel:
    """A compute kernel family that methods' matmuls run; the machine's limit for it is ``limit``.

    ``probe`` ("module:attr") builds one call of the kernel at a size: ``probe(n, device=,
    threads=) -> Probe | None``. An empty probe means no stand-alone kernel can be timed, and
    ``unmeasured`` says why. ``native_on`` lists CPU flags any of which gives the kernel a native
    path; without them it is *emulated*: still timed (on a small size, since it is slow), never
    drawn as a roof.
    """

    name: str
    probe: str
    devices: tuple[str, ...] = DEVICES
    requires: tuple[str, ...] = ()
    unit: str = "GFLOP/s"
    native_on: tuple[str, ...] = ()
    emulated: str = ""  # what runs without native_on, in words
    unmeasured: str = ""

    @property
    def limit(self) -> str:
        return f"matmul_{self.name}"

    def load(self) -> Callable:
        return load(self.probe)

    def missing(self, device: str) -> str | None:
        """Why this kernel cannot be timed on ``device`` here (None: it can)."""
        if self.unmeasured:
            return self.unmeasured
        if device not in self.devices:
            return f"no {self.name} kernel on {device}"
        for module in self.requires:
            if not importable(module):
                return f"{module} is not installed"
        return None

    def emulated_here(self, device: str, cpu_isa: Mapping[str, Any] | None = None) -> str | None:
        """The reason this kernel runs a non-native path on this CPU, or None."""
        from quantbench import isa

        if device != "cpu" or not self.native_on:
            return None
        missing = isa.missing_for(self.native_on, cpu_isa)
        return f"{missing}: {self.emulated}" if missing else None


@dataclass(frozen=True)
class Method:
    """One quantization method of a runtime.

    ``options`` is a dataclass whose fields are the keys a suite may set under
    ``method_options.<quant>``, typed (``bool``, ``int``, ``float``, ``str`` or a ``Literal`` of
    the allowed values): the suite is checked against it in one line per bad key or value.
    """

    quant: str
    builder: str  # "module:attr", called as builder(model_source, build_settings) -> Variant
    devices: tuple[str, ...]
    description: str = ""
    options: type | None = None
    requires: tuple[str, ...] = ()  # importable modules beyond the runtime's own
    # "module:attr" of ``check() -> reason | None``: why the installed libraries cannot build it, where
    # an importable module is not enough to say (torch without torch.ao's quantize_dynamic). "": always.
    available: str = ""
    preload: tuple[str, ...] = ()  # heavy modules its builder imports lazily (memory workers preload them)
    tasks: tuple[str, ...] = ()  # the tasks it can build a variant for; empty: every task
    needs_gguf: bool = False  # builds from the model's GGUF file: a model without one has no such cell
    # Why one text's output can depend on the other texts in its batch ("" when it cannot):
    # quality then scores each text alone (quality/batching.py).
    batch_sensitive: str = ""
    # The kernel family its matmuls run (a Kernel name): the peak a cell's share is taken against.
    # "" for a float method: the runtime's float kernel for its precision (Runtime.float_kernels).
    compute: str = ""
    precision: str = "fp32"  # a float method's compute precision (fp32, bf16, fp16)
    # The option that sets a method's compute precision (nf4: compute_dtype; OpenVINO:
    # inference_precision): bf16 there means bf16 kernels, and a CPU without native bf16 skips it.
    precision_option: str = ""


@dataclass(frozen=True)
class Runtime:
    """Everything the harness knows about one runtime (see docs/architecture.md, "Adding a runtime").

    Fields that name code hold ``"module:attr"`` strings, imported only when used:

    * ``model_classes``: task name -> the class that loads a checkpoint for it (the task's
      transformers Auto class where a task is absent);
    * ``drift_reference``: ``factory(device, threads) -> DriftReference``, the fixed workload timed
      between rounds in this runtime's own threads ("": PyTorch's);
    * ``device_check``: ``check(device) -> reason | None``, why it cannot run on a device that exists;
    * ``build_info``: ``describe() -> dict``, how the runtime was built, recorded in machine_info
      when the run imported ``loaded_module``;
    * ``serving``: ``"module:attr"`` of the serving adapter that drives its own server process
      (serving/cell.py; llama.cpp: llama-server); "": served in process behind the harness's batcher.
    """

    name: str  # the backend name in cells and suites
    description: str
    methods: tuple[Method, ...]
    requires: tuple[str, ...] = ()  # importable modules every method needs (the extra installs them)
    extra: str = ""  # the pip extra that installs them: quantbench[<extra>]
    libraries: tuple[str, ...] = ()  # distributions whose versions a run records
    extends: str = ""  # adds its methods to another runtime's backend (torchao adds to pytorch)
    quality_reference: str = ""  # the backend whose fp32 is its variants' reference ("": its own)
    model_classes: Mapping[str, str] = field(default_factory=dict)
    kernels: tuple[Kernel, ...] = ()
    # A float method's kernel family per compute precision: the GEMM this runtime runs (PyTorch's
    # torch.mm, ONNX Runtime's MLAS, OpenVINO's oneDNN differ by 2x on one CPU).
    float_kernels: Mapping[str, str] = field(default_factory=lambda: {"fp32": "fp32", "bf16": "bf16", "fp16": "fp16"})
    drift_reference: str = ""
    kv_cache_bytes: int | None = None  # bytes per cached key/value element when the runtime fixes it
    device_check: str = ""
    build_info: str = ""
    loaded_module: str = ""
    serving: str = ""

    @property
    def backend(self) -> str:
        return self.extends or self.name

    def model_class(self, task: str):
        from quantbench import task_kinds

        target = self.model_classes.get(task_kinds.canonical(task))
        return load(target) if target else task_kinds.kind(task).model_class()


# -- method options -------------------------------------------------------------------------------


def option_names(options: type | None) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(options)) if options else ()


def _check_type(hint: Any, value: Any) -> str | None:
    """None when ``value`` fits ``hint``; else what was expected, in words."""
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        choices = typing.get_args(hint)
        return None if value in choices else f"one of {', '.join(map(str, choices))}"
    if origin in (typing.Union, types.UnionType):
        expected = []
        for arg in typing.get_args(hint):
            if arg is type(None):
                if value is None:
                    return None
                continue
            why = _check_type(arg, value)
            if why is None:
                return None
            expected.append(why)
        return " or ".join(expected + (["null"] if type(None) in typing.get_args(hint) else []))
    if hint is bool:
        return None if isinstance(value, bool) else "true or false"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if hint is float:
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    return None


def check_option(options: type | None, key: str, value: Any, *, where: str) -> str | None:
    """None when ``value`` fits field ``key`` of ``options``; else the one-line reason."""
    hints = typing.get_type_hints(options) if options else {}
    if key not in hints:
        allowed = ", ".join(option_names(options)) or "(none)"
        return f"{where}.{key}: unknown option; allowed: {allowed}"
    expected = _check_type(hints[key], value)
    return None if expected is None else f"{where}.{key}: {value!r} is not {expected}"

"""Which runtimes exist, and through them which method runs on which backend.

One lazy line per runtime: ``"module:attr"`` names its :class:`~quantbench.backends.runtime.Runtime`
object, imported when the registry is first read (the objects are light: their builders are
strings too, imported only when a cell builds). Third-party runtimes come in through the
``quantbench.runtimes`` entry-point group, as pytest plugins do through ``pytest11``: a package
that ships one module and one entry point adds a runtime with no edit here. Recipes, option names,
method order and the ``--backend`` choices are all derived from the runtime objects. An unknown
name fails with the list of valid ones.
"""

from __future__ import annotations

import functools
import importlib.metadata
from dataclasses import dataclass
from typing import Any, Callable

from quantbench.backends.runtime import DEVICES, Kernel, Method, Runtime, check_option, importable, load, option_names
from quantbench.errors import MissingDependencyError, QuantbenchError, UnknownNameError


ENTRY_POINT_GROUP = "quantbench.runtimes"

#: The runtimes quantbench ships, one line each.
RUNTIMES = {
    "pytorch": "quantbench.backends.pytorch:RUNTIME",
    "torchao": "quantbench.backends.torchao:RUNTIME",
    "onnxruntime": "quantbench.backends.onnxruntime:RUNTIME",
    "llamacpp": "quantbench.backends.llamacpp:RUNTIME",
    "openvino": "quantbench.backends.openvino:RUNTIME",
}

__all__ = ["DEVICES", "Kernel", "Method", "Recipe", "Runtime", "backends", "kernel", "kernels", "quant_methods",
           "recipe", "recipes", "register_runtime", "runtime", "runtimes"]

_REGISTERED: dict[str, Runtime] = {}  # added at run time (register_runtime): tests, notebooks


def _importable(module: str) -> bool:
    return importable(module)


#: Option values that name a half precision (torch dtype names and OpenVINO element types).
_PRECISION_NAMES = {"bfloat16": "bf16", "bf16": "bf16", "float16": "fp16", "f16": "fp16", "float32": None, "f32": None}


@dataclass(frozen=True)
class Recipe:
    """One (method, backend) pair: a runtime's :class:`Method` with what its runtime adds."""

    method: Method
    runtime: Runtime

    def __repr__(self) -> str:
        return f"Recipe({self.quant} on {self.backend}, from runtime {self.runtime.name})"

    @property
    def quant(self) -> str:
        return self.method.quant

    @property
    def backend(self) -> str:
        return self.runtime.backend

    @property
    def builder(self) -> str:
        return self.method.builder

    @property
    def devices(self) -> tuple[str, ...]:
        return self.method.devices

    @property
    def requires(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.runtime.requires, *self.method.requires)))

    @property
    def extra(self) -> str:
        return self.runtime.extra

    @property
    def options(self) -> tuple[str, ...]:
        return option_names(self.method.options)

    @property
    def description(self) -> str:
        return self.method.description

    @property
    def preload(self) -> tuple[str, ...]:
        return self.method.preload

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.method.tasks

    @property
    def needs_gguf(self) -> bool:
        return self.method.needs_gguf

    @property
    def batch_sensitive(self) -> str:
        return self.method.batch_sensitive

    @property
    def compute(self) -> str:
        return self.method.compute

    def fits(self, *, task: str, has_gguf: bool) -> bool:
        """Whether a model of ``task`` (with or without a GGUF source) can have this variant at all."""
        return (not self.tasks or task in self.tasks) and (has_gguf or not self.needs_gguf)

    def load(self) -> Callable:
        self.check_dependencies()
        return load(self.builder)

    def missing_dependency(self) -> str | None:
        for module in self.requires:
            if not _importable(module):
                hint = f"pip install 'quantbench[{self.extra}]'" if self.extra else f"pip install {module}"
                return f"{self.quant} on {self.backend} needs the optional dependency {module!r}: {hint}"
        reason = load(self.method.available)() if self.method.available else None
        return f"{self.quant} on {self.backend}: {reason}" if reason else None

    def check_dependencies(self) -> None:
        reason = self.missing_dependency()
        if reason:
            raise MissingDependencyError(reason)

    def check_option(self, key: str, value: Any) -> str | None:
        """None when the suite's ``method_options.<quant>.<key>: value`` fits this method."""
        return check_option(self.method.options, key, value, where=f"method_options.{self.quant}")

    def precision(self, options: dict | None = None) -> str | None:
        """The half precision the method computes in ("bf16", "fp16"), as it is or as its options set
        it; None for float32 (and for the int8 and 4-bit methods that do not name one)."""
        if self.method.precision in ("bf16", "fp16"):
            return self.method.precision
        option = self.method.precision_option
        value = (options or {}).get(option) if option else None
        return _PRECISION_NAMES.get(str(value)) if value is not None else None

    def compute_for(self, options: dict | None = None) -> str:
        """The kernel family a variant built with ``options`` (or its recorded quant_config) runs: the
        method's own, else the runtime's float kernel for its precision."""
        if self.compute:
            return self.compute
        precision = self.precision(options) or self.method.precision
        return self.runtime.float_kernels.get(precision, precision)


# -- loading the runtimes ---------------------------------------------------------------------------


def _entry_point_runtimes() -> dict[str, str]:
    """name -> "module:attr" of every runtime a distribution registers in the entry-point group."""
    found = {}
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found[entry.name] = entry.value
    return found


def _load_runtime(name: str, target: str, origin: str) -> Runtime:
    try:
        obj = load(target)
    except Exception as exc:  # noqa: BLE001 - a broken plugin is named, not a traceback wall
        raise QuantbenchError(f"runtime {name!r} ({origin} {target}) failed to import: "
                              f"{type(exc).__name__}: {exc}") from None
    if not isinstance(obj, Runtime):
        raise QuantbenchError(f"runtime {name!r} ({origin} {target}) is a {type(obj).__name__}, not a "
                              "quantbench.backends.runtime.Runtime")
    if obj.name != name:
        raise QuantbenchError(f"runtime {name!r} ({origin} {target}) calls itself {obj.name!r}: the names must match")
    return obj


def description_modules() -> tuple[str, ...]:
    """The module of every runtime's description (built-in and entry points): light, and each installs its
    runtime's log filters and telemetry opt-outs, so a fresh process imports them before any library."""
    return tuple(dict.fromkeys(target.split(":")[0] for target in (*RUNTIMES.values(),
                                                                    *_entry_point_runtimes().values())))


@functools.lru_cache(maxsize=1)
def _loaded() -> tuple[Runtime, ...]:
    out = {name: _load_runtime(name, target, "built-in") for name, target in RUNTIMES.items()}
    for name, target in _entry_point_runtimes().items():
        if name in out:
            raise QuantbenchError(f"the {ENTRY_POINT_GROUP} entry point {name!r} ({target}) clashes with the "
                                  f"built-in runtime of that name")
        out[name] = _load_runtime(name, target, f"entry point {ENTRY_POINT_GROUP}")
    return tuple(out.values())


def runtimes() -> tuple[Runtime, ...]:
    """Every runtime: built-in, from entry points, and registered at run time."""
    return (*_loaded(), *_REGISTERED.values())


def register_runtime(runtime_object: Runtime) -> None:
    """Add a runtime at run time (the one-line way; a distribution uses the entry-point group)."""
    if any(r.name == runtime_object.name for r in runtimes()):
        raise QuantbenchError(f"a runtime named {runtime_object.name!r} is registered already")
    _REGISTERED[runtime_object.name] = runtime_object
    _index.cache_clear()


def unregister_runtime(name: str) -> None:
    _REGISTERED.pop(name, None)
    _index.cache_clear()


@functools.lru_cache(maxsize=1)
def _index() -> dict[str, Any]:
    all_runtimes = runtimes()
    by_backend: dict[str, Runtime] = {r.name: r for r in all_runtimes if not r.extends}
    for r in all_runtimes:
        if r.extends and r.extends not in by_backend:
            raise QuantbenchError(f"runtime {r.name!r} extends {r.extends!r}, which is not a runtime; known: "
                                  f"{', '.join(by_backend)}")
    recipes: dict[tuple[str, str], Recipe] = {}
    for r in all_runtimes:
        for method in r.methods:
            key = (method.quant, r.backend)
            if key in recipes:
                raise QuantbenchError(f"{method.quant} on {r.backend} is defined twice (by {recipes[key].runtime.name} "
                                      f"and {r.name})")
            recipes[key] = Recipe(method, r)
    kernels_by_name: dict[str, Kernel] = {}
    for r in all_runtimes:
        for k in r.kernels:
            kernels_by_name.setdefault(k.name, k)
    return {"backends": by_backend, "recipes": recipes, "kernels": kernels_by_name}


def runtime(backend: str) -> Runtime:
    """The runtime that owns ``backend`` (an extension's methods belong to the backend it extends)."""
    found = _index()["backends"].get(backend)
    if found is None:
        raise UnknownNameError(f"unknown backend {backend!r}; known: {', '.join(backends())}")
    return found


def recipes() -> tuple[Recipe, ...]:
    return tuple(_index()["recipes"].values())


def serving_adapter(backend: str):
    """The serving adapter of ``backend`` (its runtime's ``serving``: a server process it drives), or
    None when its variants are served in process, behind the harness's batcher."""
    target = runtime(backend).serving
    return load(target) if target else None


def quant_methods() -> tuple[str, ...]:
    return tuple(sorted({r.quant for r in recipes()}))


def backends() -> tuple[str, ...]:
    return tuple(sorted(_index()["backends"]))


def method_option_names(quant: str) -> tuple[str, ...]:
    return tuple(sorted({o for r in recipes() if r.quant == quant for o in r.options}))


def check_method_option(quant: str, key: str, value: Any) -> str | None:
    """None when some backend's ``quant`` accepts ``key: value``; else the reason (the first backend's)."""
    reasons = [r.check_option(key, value) for r in recipes() if r.quant == quant]
    return None if any(reason is None for reason in reasons) else (reasons[0] if reasons else None)


def recipe(quant: str, backend: str) -> Recipe | None:
    """The recipe for a pair, or None when the pair does not exist (e.g. static_int8 on pytorch)."""
    if quant not in quant_methods():
        raise UnknownNameError(f"unknown quantization method {quant!r}; known: {', '.join(quant_methods())}")
    if backend not in backends():
        raise UnknownNameError(f"unknown backend {backend!r}; known: {', '.join(backends())}")
    return _index()["recipes"].get((quant, backend))


def quality_reference(backend: str) -> str:
    """The backend whose fp32 variant is ``backend``'s quality reference (its own unless it says)."""
    return runtime(backend).quality_reference or backend


def kernels() -> tuple[Kernel, ...]:
    return tuple(_index()["kernels"].values())


def kernel(name: str) -> Kernel:
    found = _index()["kernels"].get(name)
    if found is None:
        raise UnknownNameError(f"unknown compute kernel {name!r}; known: {', '.join(_index()['kernels'])}")
    return found


def libraries() -> tuple[str, ...]:
    """The distributions the runtimes name, for machine_info's versions."""
    return tuple(dict.fromkeys(lib for r in runtimes() for lib in r.libraries))


def kernel_libraries() -> tuple[str, ...]:
    """The distributions whose versions decide the kernels' speed (the limits' cache key)."""
    return tuple(dict.fromkeys(lib for r in runtimes() if any(k.probe for k in r.kernels) for lib in r.libraries[:1]))

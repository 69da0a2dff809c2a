"""The package's shape, checked on its source: imports run one way, and a runtime lives in backends/.

Read with ``ast`` (nothing is imported): every ``import`` counts, function-level ones included,
except those under ``if TYPE_CHECKING:`` (annotations only).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "quantbench"
RUNTIME_NAMES = re.compile(r"onnxruntime|openvino|llamacpp|llama_cpp|torchao")
#: The same names as prose writes them (help texts, messages): "ONNX Runtime", "OpenVINO", "llama.cpp".
RUNTIME_PROSE = re.compile(r"onnx ?runtime|openvino|llama[._ -]?cpp|torchao", re.IGNORECASE)
#: Strings that cite a runtime's tool as the definition of a statistic, not a fact about the runtime.
CITATIONS = {"quantbench.quality.lm_scoring": ("as llama.cpp's llama-perplexity --kl-divergence",)}
RUNTIME_PACKAGES = ("pytorch", "torchao", "onnxruntime", "openvino", "llamacpp")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rsplit(".", 1)[0] if "." in name else ""
    return name or None


def _imports(module: str) -> list[tuple[str, list[str]]]:
    """(imported quantbench module, names taken from it) for every run-time import of ``module``."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING"
                   for n in ast.walk(node)}
    out = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.append((full, []) if full in MODULES else (base, [alias.name]))
    return [(_resolve(name), names) for name, names in out if name.startswith("quantbench") and _resolve(name)]


GRAPH = {m: {target for target, _ in _imports(m) if target != m} for m in MODULES}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_a_module_that_imports_it_back():
    assert _cycles() == []


def _runtime_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "backends" and parts[2] in RUNTIME_PACKAGES else None


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("quantbench.backends")))
def test_a_backend_imports_no_task_runner_plugin_or_other_runtime(module):
    own = _runtime_of(module)
    for target, names in _imports(module):
        assert not target.startswith(("quantbench.tasks", "quantbench.runner", "quantbench.plugin")), (module, target)
        other = _runtime_of(target)
        if other and other != own:
            # An extension names the runtime it extends in its object only; nothing reaches into another
            # runtime's modules.
            pytest.fail(f"{module} imports {target}: runtimes share code through backends/hf.py and base.py only")
        private = [n for n in names if n.startswith("_") and target.startswith("quantbench.backends")
                   and _runtime_of(target) != own]
        assert not private, (module, target, private)


def _code_names(path: Path) -> set[str]:
    """Identifiers, attribute names, imported names and string constants, docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(
                    first.value.value, str):
                docstrings.add(id(first.value))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            found.add(node.value)
        elif isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(alias.name for alias in node.names)
            found.add(getattr(node, "module", None) or "")
    return found


def test_nothing_outside_backends_names_a_runtime_in_code():
    offenders = {}
    for module, path in MODULES.items():
        if module.startswith("quantbench.backends") or module == "quantbench.registry":
            continue
        named = sorted(n for n in _code_names(path) if RUNTIME_PROSE.search(n)
                       and not n.startswith(CITATIONS.get(module, ())))
        if named:
            offenders[module] = named
    assert offenders == {}


def test_the_registry_names_each_runtime_on_one_line():
    from quantbench import registry

    assert set(registry.RUNTIMES) == set(RUNTIME_PACKAGES)
    text = MODULES["quantbench.registry"].read_text()
    lines = [line for line in text.splitlines() if RUNTIME_NAMES.search(line)]
    assert len(lines) == 4 and all(line.strip().startswith('"') for line in lines)  # pytorch's line names none


@pytest.mark.parametrize(("package", "allowed"), [
    # reports and the gate read run files through results.py (and the ISA line, the cost arithmetic)
    ("quantbench.reports", {"quantbench.results", "quantbench.errors", "quantbench.isa", "quantbench.yaml_text",
                            "quantbench.efficiency.cost"}),
    # (quantbench ab reads the suite for its blocks and policy, and pools runs' rounds with the harness's own
    # summary of them, so a pooled p50 is computed as a run's is; named baselines can be names on runs in the
    # history store; the gate against the history reads a run as the store does, and its change points)
    ("quantbench.gate", {"quantbench.results", "quantbench.errors", "quantbench.yaml_text", "quantbench.suite",
                         "quantbench.measures.latency", "quantbench.history", "quantbench.history.ingest",
                         "quantbench.history.changepoints"}),
    # the history store reads runs through results.py and fingerprints machines with the harness's own
    # readers (the ISA, the CPU's name); it sits below the gate, which keeps named baselines in it; its
    # trend page and exports draw and write figures with the run report's helpers (charts, the page's
    # template and JSON escaping, the uncertainty text), which sit below it and never import it
    ("quantbench.history", {"quantbench.results", "quantbench.errors", "quantbench.isa",
                            "quantbench.hardware.machine", "quantbench.reports.charts", "quantbench.reports.html",
                            "quantbench.reports.uncertainty"}),
    # the suite sits below the task specs: it checks task names against task_kinds
    ("quantbench.suite", {"quantbench.errors", "quantbench.registry", "quantbench.results", "quantbench.task_kinds",
                          "quantbench.yaml_text"}),
    # the measures and the efficiency layer know runtimes only through the registry
    ("quantbench.measures", {"quantbench.backends.runtime", "quantbench.cache", "quantbench.cells", "quantbench.errors",
                             "quantbench.models", "quantbench.registry"}),
    ("quantbench.efficiency", {"quantbench.backends.runtime", "quantbench.cache", "quantbench.errors",
                               "quantbench.hardware.devices", "quantbench.hardware.machine", "quantbench.isa",
                               "quantbench.registry"}),
    # task specs: inputs and the timed call, nothing above them
    ("quantbench.tasks", {"quantbench.backends.hf", "quantbench.errors", "quantbench.task_kinds"}),
])
def test_each_layer_imports_only_what_lies_below_it(package, allowed):
    reached = {target for module in MODULES if module.startswith(package)
               for target in GRAPH[module] if not target.startswith(package)}
    assert reached <= allowed, reached - allowed

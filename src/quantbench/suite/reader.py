"""Reading one mapping of a suite's YAML: every error names ``file: key.path`` and what is allowed."""

from __future__ import annotations

from typing import Any

from quantbench.errors import SuiteError


class Reader:
    """Reads one mapping of the YAML, naming ``file: key.path`` in every error."""

    def __init__(self, where: str, data: Any, prefix: str = ""):
        self.where, self.prefix = where, prefix
        if not isinstance(data, dict):
            raise SuiteError(f"{where}: {prefix or 'top level'} must be a mapping, got {type(data).__name__}")
        self.data = data

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def fail(self, name: str, message: str) -> SuiteError:
        return SuiteError(f"{self.where}: {self.key(name)}: {message}")

    def check_keys(self, allowed: tuple[str, ...]) -> None:
        unknown = sorted(set(self.data) - set(allowed))
        if unknown:
            raise self.fail(unknown[0], f"unknown key; allowed keys: {', '.join(allowed)}")

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = None, *, required: bool = False) -> Any:
        if name not in self.data or self.data[name] is None:
            if required:
                raise self.fail(name, "is required")
            return default
        value = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            raise self.fail(name, f"expected {'/'.join(k.__name__ for k in kinds)}, got {value!r}")
        if not isinstance(value, kinds):
            raise self.fail(name, f"expected {'/'.join(k.__name__ for k in kinds)}, got {value!r}")
        return value

    def positive_int(self, name: str, default: int) -> int:
        value = self.get(name, int, default)
        if value < 1:
            raise self.fail(name, f"must be a positive integer, got {value!r}")
        return value

    def choice(self, name: str, allowed: tuple[str, ...], default: str | None = None, *, required: bool = False) -> str:
        value = self.get(name, str, default, required=required)
        if value not in allowed:
            raise self.fail(name, f"{value!r} is not allowed; allowed values: {', '.join(allowed)}")
        return value

    def choices(self, name: str, allowed: tuple[str, ...], default: tuple[str, ...]) -> tuple[str, ...]:
        values = self.list_of(name, str, default)
        for i, value in enumerate(values):
            if value not in allowed:
                raise self.fail(f"{name}[{i}]", f"{value!r} is not allowed; allowed values: {', '.join(allowed)}")
        return values

    def list_of(self, name: str, kind: type, default: tuple) -> tuple:
        value = self.get(name, (list, kind), list(default))
        values = value if isinstance(value, list) else [value]
        if not values:
            raise self.fail(name, "must not be empty")
        for i, item in enumerate(values):
            if not isinstance(item, kind) or isinstance(item, bool):
                raise self.fail(f"{name}[{i}]", f"expected {kind.__name__}, got {item!r}")
            if kind is int and item < 1:
                raise self.fail(f"{name}[{i}]", f"must be a positive integer, got {item!r}")
        if len(set(values)) != len(values):
            raise self.fail(name, f"has duplicates: {values}")
        return tuple(values)

    def section(self, name: str) -> Reader:
        return Reader(self.where, self.data.get(name) or {}, f"{self.prefix}{name}.")

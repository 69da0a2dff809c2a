"""YAML from a user's file, with a parse error that names the file and the line."""

from __future__ import annotations

from typing import Any

import yaml

from quantbench.errors import QuantbenchError


def parse_yaml(text: str, *, where: str, error: type[QuantbenchError] = QuantbenchError) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error(f"{where}: not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None

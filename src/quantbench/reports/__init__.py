"""Reports people read: the HTML page, report.json, github-action-benchmark files, model cards,
hardware comparisons and merges of run files.

``write_reports`` (see :mod:`quantbench.reports.write`) is the entry point for the pytest
plugin; :mod:`quantbench.reports.commands` wires the CLI.
"""

from __future__ import annotations

from typing import Any

__all__ = ["write_reports"]


def __getattr__(name: str) -> Any:
    # Lazy: huggingface_hub and jinja2 cost ~0.3 s to import, which `quantbench gate` should not pay.
    if name == "write_reports":
        from quantbench.reports.write import write_reports

        return write_reports
    raise AttributeError(name)

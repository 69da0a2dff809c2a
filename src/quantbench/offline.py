"""No phoning home: the usage-telemetry switches of the libraries quantbench drives, set on import.

Set as environment defaults (a value the user set is kept), so every worker process, Ray task and
server the harness starts inherits them. A runtime whose library has no switch declines in its own
backend module (OpenVINO's consent check), and ONNX Runtime's switch is set there too: runtime facts
live with their runtime. docs/install.md lists them all.
"""

from __future__ import annotations

import os

#: variable -> value, with the library that reads it and what it would send.
SWITCHES = {
    "HF_HUB_DISABLE_TELEMETRY": "1",  # huggingface_hub (and transformers, datasets through it): usage pings
    "DO_NOT_TRACK": "1",  # the cross-tool convention; huggingface_hub honours it too
    "RAY_USAGE_STATS_ENABLED": "0",  # Ray: cluster usage reports from `ray start` / ray.init
}


def disable_telemetry() -> None:
    for name, value in SWITCHES.items():
        os.environ.setdefault(name, value)

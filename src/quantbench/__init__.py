"""quantbench: benchmark and evaluate quantized transformers with pytest-benchmark."""

from quantbench import offline

__version__ = "0.1.0"

# First thing on import, before any library reads its switch (quantbench.offline).
offline.disable_telemetry()

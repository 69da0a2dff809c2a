"""quantbench: benchmark and evaluate quantized transformers with pytest-benchmark."""

__version__ = "0.1.0"

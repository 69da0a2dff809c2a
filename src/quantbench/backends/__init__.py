"""Runtimes: one package each, exporting one ``Runtime`` object (runtime.py says what it holds).

Shared here: the Variant contract (base.py), the Hugging Face helpers every runtime uses (hf.py),
option dataclasses several runtimes share (options.py). The registry finds the runtimes; nothing
else in quantbench names one.
"""

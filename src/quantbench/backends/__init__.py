"""Backends build Variants. Imported lazily through :mod:`quantbench.registry`."""

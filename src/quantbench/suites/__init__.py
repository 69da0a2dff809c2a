"""The shipped sweep definitions (``--suite NAME`` reads ``NAME.yaml`` here; ``suites/`` in a checkout)."""

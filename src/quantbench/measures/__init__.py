"""Measures: each module turns one aspect of a cell into figures for ``extra_info``."""

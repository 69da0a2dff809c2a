"""This machine: which devices exist and can run a cell, and the machine_info a run records."""

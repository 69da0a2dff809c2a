# The quantbench pytest plugin is registered through the `pytest11` entry point
# (see pyproject.toml), so `pytest bench/` finds it without anything here.

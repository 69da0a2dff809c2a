# The plugin tests' fixtures (bench_dir, the tiny models) live in tests/conftest.py.

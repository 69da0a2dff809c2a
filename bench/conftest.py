# Benchmarks get their cells from the quantbench plugin (src/quantbench/plugin/).

"""The benchmark modules: one pytest function per measurement, parametrized with the suite's cells.

They ship with the package, so a sweep runs outside a checkout too::

    pytest --pyargs quantbench.bench --suite default --benchmark-json results.json

In a checkout, ``bench/`` at the top is this folder: ``pytest bench/ --suite default`` is the same run.
"""

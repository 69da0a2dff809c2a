"""``quantbench sweep --ray ADDRESS``: one sweep spread over a Ray cluster, one timed job per node.

The sweep is planned on the driver exactly as ``pytest bench/`` would collect it, cut into units
of one variant (every cell of one model × method × backend × device), and each unit runs as a
Ray task that starts ``python -m pytest bench/ --cells-from FILE`` in a subprocess on its node.
A node offers one ``quantbench_slot``, so two units never time on the same node at once; node
labels route each device's units to nodes of that device. Results come back per unit, are
journaled as they arrive, and are merged through :mod:`quantbench.reports.merge` into one run
file that reports, ``compare`` and the gate read like a local run.

Modules, one concern each: :mod:`.plan` (units from the collected cells), :mod:`.routing`
(labels, slots, which nodes can take a unit), :mod:`.node_task` (what runs on a node),
:mod:`.board` (live progress), :mod:`.journal` (the sweep's journal and ``--resume``),
:mod:`.assemble` (the merged run file), :mod:`.driver` (the ``ray.wait`` loop, retries,
Ctrl-C) and :mod:`.commands` (the CLI). Ray is imported only when a sweep starts.
"""

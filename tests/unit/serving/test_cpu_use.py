"""CPU time per point (serving/cpu_use.py): the harness's and a separate server process's."""

from __future__ import annotations

import subprocess
import sys
import time

from quantbench.serving.cpu_use import CpuUse


def test_a_busy_server_process_and_an_idle_harness_are_told_apart():
    busy = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 5\nwhile time.time() < end: pass"])
    try:
        time.sleep(0.3)  # past the interpreter's start
        cpu = CpuUse(busy.pid).start()
        time.sleep(1.0)
        figures = cpu.figures(1.0)
    finally:
        busy.kill()
        busy.wait()
    assert figures["server_cpu_s"] > 0.5  # one core spinning for about a second
    assert figures["harness_cpu_s"] < 0.3  # this process slept
    assert figures["server_cpu_share"] > figures["harness_cpu_share"]
    assert figures["harness_is"] == "LoadGen and the client's threads"


def test_without_a_server_process_the_harness_is_the_whole_system():
    cpu = CpuUse().start()
    end = time.process_time() + 0.2
    while time.process_time() < end:
        pass
    figures = cpu.figures(0.5)
    assert figures["harness_cpu_s"] >= 0.19 and "server_cpu_s" not in figures
    assert figures["harness_is"].endswith("in-process model")

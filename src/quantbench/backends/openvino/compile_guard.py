"""A bf16 compile that may kill the process is tried in a child process first.

On an Intel Xeon VM of this project (family 6 model 167: AVX-512 BF16 and AMX, the AMX tile state
granted by the kernel, a regular tile palette), OpenVINO 2025.4's CPU plugin died with SIGFPE in
``compile_model`` for the tiny Llama test model under ``INFERENCE_PRECISION_HINT: bf16``. Its AMX kernels
are the cause: with ``ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16`` the same compile succeeds, with
``AVX512_CORE_AMX`` it dies; a lone 64x64 bf16 matmul compiles either way. A crash in the harness's own
process would take the whole sweep and its results with it, so a bf16 compile is tried in a child
process first (seconds, once per IR and configuration in a process). When the child dies, the cell
fails with that reason and the sweep goes on. The child never runs the model: the crash is at compile.
"""

from __future__ import annotations

import functools
import json
import signal
import subprocess
import sys
from pathlib import Path

# The child declines OpenVINO's telemetry as the harness does (importing the runtime's description).
_CHILD = ("import json, sys\nimport quantbench.backends.openvino\nimport openvino as ov\n"
          "ov.Core().compile_model(sys.argv[1], 'CPU', json.loads(sys.argv[2]))\n")


@functools.lru_cache(maxsize=None)
def _child_compile(xml: str, config_json: str) -> str | None:
    done = subprocess.run([sys.executable, "-c", _CHILD, xml, config_json], capture_output=True, text=True,
                          timeout=900, stdin=subprocess.DEVNULL)
    if done.returncode == 0:
        return None
    if done.returncode < 0:
        return f"a child process compiling it died with {signal.Signals(-done.returncode).name}"
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    return f"a child process compiling it failed: {lines[-1] if lines else f'exit code {done.returncode}'}"


def crash_reason(folder: Path, config: dict[str, str]) -> str | None:
    """None when the IR in ``folder`` compiles with ``config`` in a child process; else why it did not."""
    xml = next(iter(sorted(Path(folder).glob("*.xml"))), None)
    if xml is None:
        return None  # nothing to try: the real compile reports what is missing
    return _child_compile(str(xml), json.dumps(config, sort_keys=True))

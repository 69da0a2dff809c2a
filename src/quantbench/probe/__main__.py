"""``python -m quantbench.probe [FILE]``: print a probe's composition as Markdown."""

import sys

from quantbench.errors import QuantbenchError
from quantbench.probe import describe_probe_markdown, load_probe

try:
    print(describe_probe_markdown(load_probe(sys.argv[1] if len(sys.argv) > 1 else None)), end="")
except QuantbenchError as exc:
    sys.exit(f"error: {exc}")

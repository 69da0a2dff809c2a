"""The plugin's command-line options: each prefixed, each with a QUANTBENCH_* variable, parsed strictly."""

from __future__ import annotations

import os

import pytest

# option name -> (env var, parser, help)
LIST_OPTIONS = {
    "model": (str, "model names from the suite"),
    "quant": (str, "quantization methods"),
    "backend": (str, "backends"),
    "device": (str, "devices"),
    "batch_size": (int, "batch sizes"),
    "seq_len": (int, "sequence lengths (classification)"),
    "prompt_len": (int, "prompt lengths in tokens (generation)"),
    "new_tokens": (int, "new tokens per row (generation)"),
    "scenario": (str, "serving scenarios (single_stream, offline, server)"),
}


def _env(name: str) -> str | None:
    return os.environ.get(f"QUANTBENCH_{name.upper()}") or None


def parse_list(option: str, raw: str | None, kind: type) -> tuple:
    """``"1,8, 32"`` -> ``(1, 8, 32)``; a bad item is a usage error naming it."""
    if not raw:
        return ()
    items = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            items.append(kind(item))
        except ValueError:
            raise pytest.UsageError(f"--{option.replace('_', '-')}: {item!r} is not a valid {kind.__name__}") from None
    return tuple(items)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("quantbench", "quantbench: quantized transformer benchmarks")
    group.addoption("--suite", default=None, help="suite name in suites/ or a YAML path (env QUANTBENCH_SUITE; "
                                                  "default: default)")
    from quantbench import registry

    # The known methods and backends come from the runtimes (a third-party runtime's included).
    known = {"quant": registry.quant_methods(), "backend": registry.backends(), "device": registry.DEVICES}
    for name, (_kind, what) in LIST_OPTIONS.items():
        among = f" (of: {', '.join(known[name])})" if name in known else ""
        group.addoption(f"--{name.replace('_', '-')}", dest=f"quantbench_{name}", default=None, metavar="LIST",
                        help=f"narrow the sweep to these comma-separated {what}{among} (env QUANTBENCH_{name.upper()})")
    group.addoption("--price-per-hour", dest="quantbench_price_per_hour", default=None, metavar="USD",
                    help="machine price in USD per hour: adds cost per million inferences / output tokens "
                         "(env QUANTBENCH_PRICE_PER_HOUR; default: the suite's cost.price_per_hour)")
    group.addoption("--threads", dest="quantbench_threads", default=None, metavar="N",
                    help="intra-op threads of every runtime (env QUANTBENCH_THREADS; default: the suite's)")
    group.addoption("--processes", dest="quantbench_processes", default=None, metavar="N",
                    help="time each classification cell in N processes, the harness's and N-1 fresh workers "
                         "(env QUANTBENCH_PROCESSES; default: the suite's measure.processes, 1 unless set)")
    group.addoption("--results-jsonl", dest="quantbench_results_jsonl", default=None, metavar="PATH",
                    help="journal every finished cell here as it ends (default: next to --benchmark-json, "
                         "results.jsonl; env QUANTBENCH_RESULTS_JSONL)")
    group.addoption("--resume", dest="quantbench_resume", action="store_true", default=False,
                    help="skip the cells the journal already holds as passed, run the rest, and write a "
                         "complete JSON with every cell once")
    group.addoption("--shard", dest="quantbench_shard", default=None, metavar="K/N",
                    help="run only shard K of N (stable and even across machines; env QUANTBENCH_SHARD)")
    group.addoption("--cells-from", dest="quantbench_cells_from", default=None, metavar="FILE",
                    help="run only the cells listed in FILE, one `test[cell id]` a line (what `quantbench sweep` "
                         "gives each node; a listed cell this collection lacks is a usage error)")
    group.addoption("--report-dir", dest="quantbench_report_dir", default=None, metavar="DIR",
                    help="write HTML/JSON reports and model cards here after the run (env QUANTBENCH_REPORT_DIR)")
    group.addoption("--gate-baseline", dest="quantbench_gate_baseline", default=None, metavar="JSON",
                    help="after the run, gate the results against this baseline run file, or name:NAME for a "
                         "saved baseline; a regression makes pytest exit 1 (env QUANTBENCH_GATE_BASELINE)")
    group.addoption("--history", dest="quantbench_history", default=None, metavar="URL_OR_PATH",
                    help="after the run, add the run file (--benchmark-json) to this history database: a path "
                         "(SQLite) or a URL (postgresql+psycopg://...); with it, --gate-baseline name:NAME reads "
                         "the run named NAME there (env QUANTBENCH_HISTORY; needs the history extra)")
    group.addoption("--gate-policy", dest="quantbench_gate_policy", default=None, metavar="YAML",
                    help="gate policy file (default: the suite's `gates:` or the built-in policy; "
                         "env QUANTBENCH_GATE_POLICY)")


def option(config: pytest.Config, name: str) -> str | None:
    """Command line first, then the QUANTBENCH_* environment variable."""
    value = config.getoption(f"quantbench_{name}", default=None) if name != "suite" else config.getoption("suite")
    return value if value is not None else _env(name)

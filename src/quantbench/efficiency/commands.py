"""``quantbench machine``: this machine's measured limits (peak matmul per dtype, memory bandwidth)."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    parser = subparsers.add_parser("machine", help="measure (once, then cached) and print this machine's limits",
                                   description="Peak dense matmul throughput (fp32, bf16, int8) and STREAM memory "
                                               "bandwidth, measured with the libraries the variants use.")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's)")
    parser.add_argument("--refresh", action="store_true", help="measure again instead of reading the cache")
    parser.add_argument("--json", action="store_true", help="print the JSON record")
    parser.set_defaults(func=_machine)


def _machine(args: argparse.Namespace) -> int:
    from quantbench.hardware import devices
    from quantbench.efficiency import machine_limits
    from quantbench.errors import QuantbenchError
    from quantbench.hardware.machine import cpu_model, gpu_name

    reason = devices.device_unavailable(args.device)
    if reason:
        raise QuantbenchError(f"--device {args.device}: {reason}")
    if args.threads is not None and args.threads < 1:
        raise QuantbenchError(f"--threads: must be a positive integer, got {args.threads}")
    limits = machine_limits(device=args.device, threads=args.threads, refresh=args.refresh)
    if args.json:
        print(json.dumps(limits, indent=2))
        return 0
    where = gpu_name() if args.device == "cuda" else cpu_model()
    how = "from the cache" if limits.get("cached") else f"measured in {limits.get('seconds')} s"
    print(f"{where} · {args.device} · threads {limits.get('threads')} · {how}")
    for entry in limits["limits"].values():
        print(f"  {entry['name']:<18} peak {entry['peak']:>9.1f} {entry['unit']:<8} median {entry['median']:>9.1f} "
              f"range {entry['min']:.1f}-{entry['max']:.1f}  ({entry['method']}, {entry['size']})")
    return 0

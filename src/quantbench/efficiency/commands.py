"""``quantbench machine``: this machine's measured limits (peak of each kernel family, memory bandwidth)."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    parser = subparsers.add_parser("machine", help="measure (once, then cached) and print this machine's limits",
                                   description="Peak throughput of each compute kernel family the cells run (each "
                                               "runtime's float and quantized GEMM paths, as its Runtime object lists "
                                               "them) and STREAM memory bandwidth, each measured with that kernel.")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "mps"))
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's)")
    parser.add_argument("--kernels", default=None, metavar="A,B",
                        help="kernel families to measure (default: every one that exists for the device)")
    parser.add_argument("--refresh", action="store_true", help="measure again instead of reading the cache")
    parser.add_argument("--json", action="store_true", help="print the JSON record")
    parser.set_defaults(func=_machine)


def _machine(args: argparse.Namespace) -> int:
    from quantbench import registry
    from quantbench.efficiency import machine_limits
    from quantbench.errors import QuantbenchError
    from quantbench.hardware import devices
    from quantbench.hardware.machine import cpu_model, gpu_name

    reason = devices.device_unavailable(args.device)
    if reason:
        raise QuantbenchError(f"--device {args.device}: {reason}")
    if args.threads is not None and args.threads < 1:
        raise QuantbenchError(f"--threads: must be a positive integer, got {args.threads}")
    kernels = None
    if args.kernels is not None:
        kernels = [k.strip() for k in args.kernels.split(",") if k.strip()]
        for name in kernels:
            registry.kernel(name)  # an unknown family is a one-line error naming the known ones
    else:
        kernels = [k.name for k in registry.kernels() if args.device in k.devices and not k.unmeasured]
    limits = machine_limits(device=args.device, threads=args.threads, kernels=kernels, refresh=args.refresh)
    if args.json:
        print(json.dumps(limits, indent=2))
        return 0
    where = gpu_name() if args.device != "cpu" else cpu_model()
    how = "from the cache" if limits.get("cached") else f"measured in {limits.get('seconds')} s"
    print(f"{where} · {args.device} · threads {limits.get('threads')} · {how}")
    if limits.get("isa"):
        print(f"  ISA: {limits['isa']['label']}")
    for entry in limits["limits"].values():
        if entry.get("peak") is None:
            print(f"  {entry['name']:<24} not measured: {entry.get('unmeasured')}")
            continue
        note = f"  EMULATED: {entry['emulated']}" if entry.get("emulated") else ""
        print(f"  {entry['name']:<24} peak {entry['peak']:>9.1f} {entry['unit']:<8} median {entry['median']:>9.1f} "
              f"range {entry['min']:.1f}-{entry['max']:.1f}  ({entry['method']}, {entry['size']}){note}")
    return 0

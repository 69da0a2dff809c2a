"""Where a unit may run: a free ``quantbench_slot`` on a node whose labels match the unit's.

* A node that may time offers one slot (``ray start --resources '{"quantbench_slot": 1}'``) and
  every unit asks for one, so Ray never puts two units on one node at once. The head node gets
  no slot and does no timing.
* Each unit carries a Ray label selector: ``quantbench/device=<the unit's device>`` plus every
  ``--node-label KEY=VALUE``. Ray's scheduler does the routing; this module only builds the
  selector and checks, before anything is submitted, that some alive node can take each unit
  (otherwise the task would wait forever, silently).
* A CUDA unit asks for every GPU of the nodes it can land on, so Ray sets
  ``CUDA_VISIBLE_DEVICES`` to all of them instead of blanking it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from quantbench.errors import QuantbenchError

SLOT = "quantbench_slot"
DEVICE_LABEL = "quantbench/device"
# Ray's (Kubernetes') label syntax: an optional DNS-subdomain prefix and a name of 63 characters.
_NAME = r"[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,61}[a-zA-Z0-9])?"
_PREFIX = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_KEY = re.compile(rf"^({_PREFIX}/)?{_NAME}$")
_VALUE = re.compile(rf"^{_NAME}$")


def parse_node_labels(items: list[str] | None) -> dict[str, str]:
    """``["KEY=VALUE", ...]`` -> dict; a malformed one is one line naming it."""
    labels: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise QuantbenchError(f"--node-label {item!r}: expected KEY=VALUE, e.g. instance=c7i.2xlarge")
        if not _KEY.match(key) or len(key.rsplit("/", 1)[-1]) > 63:
            raise QuantbenchError(f"--node-label {item!r}: {key!r} is not a valid Ray label key "
                                  "(letters, digits, '-', '_', '.', an optional 'prefix/')")
        if not _VALUE.match(value):
            raise QuantbenchError(f"--node-label {item!r}: {value!r} is not a valid Ray label value "
                                  "(63 letters, digits, '-', '_' or '.' at most, alphanumeric at both ends)")
        if key.startswith("ray.io/"):
            raise QuantbenchError(f"--node-label {item!r}: the ray.io/ prefix is Ray's own")
        if key == DEVICE_LABEL:
            raise QuantbenchError(f"--node-label {item!r}: {DEVICE_LABEL} comes from each unit's device; "
                                  "narrow devices with -- --device")
        labels[key] = value
    return labels


def selector(device: str, extra: dict[str, str]) -> dict[str, str]:
    """The label selector of a unit of ``device``."""
    return {DEVICE_LABEL: device, **extra}


@dataclass(frozen=True)
class NodeView:
    """One alive node as the driver sees it in ``ray.nodes()``."""

    node_id: str
    ip: str
    labels: dict[str, str]
    resources: dict[str, float]

    @property
    def short(self) -> str:
        return f"{self.ip}/{self.node_id[:8]}"

    def matches(self, wanted: dict[str, str], gpus: float = 0) -> bool:
        return (self.resources.get(SLOT, 0) >= 1 and self.resources.get("GPU", 0) >= gpus
                and all(self.labels.get(k) == v for k, v in wanted.items()))


def alive_nodes(ray_nodes: list[dict[str, Any]]) -> list[NodeView]:
    return [NodeView(n["NodeID"], n.get("NodeManagerAddress", "?"), dict(n.get("Labels") or {}),
                     dict(n.get("Resources") or {})) for n in ray_nodes if n.get("Alive")]


def nodes_by_host(device: str, wanted: dict[str, str], nodes: list[NodeView]) -> list[list[NodeView]]:
    """The timing nodes that could run ``device`` units, grouped by host (IP): the machine limits are
    measured node after node within a host, so two nodes of one host never time their peaks at the
    same time, and hosts in parallel."""
    hosts: dict[str, list[NodeView]] = {}
    gpus = 1 if device == "cuda" else 0
    for node in nodes:
        if node.matches(wanted, gpus):
            hosts.setdefault(node.ip, []).append(node)
    return list(hosts.values())


def gpus_for(device: str, wanted: dict[str, str], nodes: list[NodeView]) -> float:
    """A CUDA unit asks for all the GPUs of the smallest node it may land on; others ask for none."""
    if device != "cuda":
        return 0
    counts = [n.resources.get("GPU", 0) for n in nodes if n.matches(wanted)]
    usable = [c for c in counts if c >= 1]
    if not usable:
        raise QuantbenchError(f"no alive node with a {SLOT} and labels {describe(wanted)} has a GPU "
                              "(start CUDA nodes with --num-gpus or let Ray detect them)")
    return min(usable)


def describe(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items())


def check_routable(wanted_by_unit: dict[str, tuple[dict[str, str], float]], nodes: list[NodeView]) -> None:
    """Every unit must have an alive node that can take it, or the sweep stops before it starts."""
    slots = [n for n in nodes if n.resources.get(SLOT, 0) >= 1]
    if not slots:
        raise QuantbenchError(f"no node in the cluster offers a {SLOT} (start timing nodes with "
                              f"--resources '{{\"{SLOT}\": 1}}'); nodes: {_inventory(nodes)}")
    for unit, (wanted, gpus) in wanted_by_unit.items():
        if not any(n.matches(wanted, gpus) for n in nodes):
            raise QuantbenchError(f"no alive node with a {SLOT} has labels {describe(wanted)} (needed by {unit}); "
                                  f"nodes: {_inventory(nodes)}")


def _inventory(nodes: list[NodeView]) -> str:
    def one(n: NodeView) -> str:
        own = {k: v for k, v in n.labels.items() if not k.startswith("ray.io/")}
        slot = f"{SLOT}={n.resources.get(SLOT, 0):g}"
        return f"{n.short} [{slot}{', ' + describe(own) if own else ''}]"

    return "; ".join(one(n) for n in nodes) or "none alive"

"""A suite's ``serving:`` section: MLPerf LoadGen scenarios, the latency SLO, and the points' sizes
(bench/test_serving.py; docs/serving.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quantbench.suite.llama_server import LlamaServerSettings, read_llama_server
from quantbench.suite.reader import Reader

#: Serving under load (MLPerf LoadGen): the scenarios a `serving:` section may list, in run order.
SERVING_SCENARIOS = ("single_stream", "offline", "server")
#: The SLO keys: ``<figure>_p<percentile>_ms``; latency for classifiers, TTFT and TPOT for generation.
SLO_FIGURES = {"latency": "text-classification", "ttft": "text-generation", "tpot": "text-generation"}
SLO_PERCENTILES = (50, 90, 95, 99)


def early_stopping_queries(percentile: float) -> int:
    """The fewest queries LoadGen's early stopping needs to call a ``percentile`` bound met, with
    not one query over it: (percentile)^n <= 1 - 0.99 (its confidence). 459 at p99, 44 at p90."""
    import math

    return math.ceil(math.log(0.01) / math.log(percentile))


@dataclass(frozen=True)
class ServingSettings:
    """Serving under load: each variant x scenario is one ``test_serving`` cell (bench/test_serving.py).

    Durations are seconds per LoadGen point (MLPerf's own runs last 600 s: these results are not a
    submission). ``min_queries`` None is the early-stopping minimum of the SLO's percentile.
    """

    scenarios: tuple[str, ...] = ()
    slo: dict[str, float] = field(default_factory=dict)  # e.g. {"latency_p99_ms": 100.0}
    min_duration_s: float = 2.0
    max_duration_s: float = 10.0
    min_queries: int | None = None
    samples: int = 256  # the query sample library: test texts (classifier) or prompts (generation)
    precision: float = 0.05  # the capacity search stops when its bracket is this narrow (relative)
    max_points: int = 8  # server points per batcher setting, at most
    max_queue_delay_ms: float = 5.0  # the dynamic batcher's wait for a fuller batch (Triton semantics)
    compare_tokens: int = 0  # generation: prompts whose served tokens are compared with the bindings'
    knee_points: int = 4  # server: points spread over the capacity's bracket after the bisection (the fit's)
    replicates: int = 1  # server: the knee's points on this many independently started systems (search.py)
    seed: int = 0  # server: point i of a setting's search runs LoadGen with seed + 1000 x setting + i
    llama_server: LlamaServerSettings = field(default_factory=LlamaServerSettings)  # suite/llama_server.py

    def bounds(self, task: str) -> dict[str, float]:
        """The SLO limits of ``task``'s cells: ``{"latency": ms}`` or ``{"ttft": ms, "tpot": ms}``."""
        return {key.split("_p")[0]: value for key, value in self.slo.items() if SLO_FIGURES[key.split("_p")[0]] == task}

    def percentile(self, task: str) -> float | None:
        """The SLO percentile of ``task`` as a fraction (0.99), None when the suite sets no bound for it."""
        found = {int(key.split("_p")[1].removesuffix("_ms")) for key in self.slo
                 if SLO_FIGURES[key.split("_p")[0]] == task}
        return found.pop() / 100 if found else None

    def queries(self, task: str) -> int:
        """Minimum queries per point for ``task``: the suite's, or LoadGen's early-stopping minimum."""
        percentile = self.percentile(task) or 0.9
        return self.min_queries if self.min_queries is not None else early_stopping_queries(percentile)

    def summary(self) -> dict[str, Any]:
        return {"scenarios": list(self.scenarios), "slo": dict(self.slo), "min_duration_s": self.min_duration_s,
                "max_duration_s": self.max_duration_s, "min_queries": self.min_queries, "samples": self.samples,
                "precision": self.precision, "max_points": self.max_points,
                "max_queue_delay_ms": self.max_queue_delay_ms, "compare_tokens": self.compare_tokens,
                "knee_points": self.knee_points, "replicates": self.replicates, "seed": self.seed,
                **({"llama_server": self.llama_server.summary()} if self.llama_server.summary() else {})}


def read_serving(reader: Reader, tasks_in_suite: set[str]) -> ServingSettings:
    reader.check_keys(("scenarios", "slo", "min_duration_s", "max_duration_s", "min_queries", "samples", "precision",
                       "max_points", "max_queue_delay_ms", "compare_tokens", "knee_points", "replicates",
                       "seed", "llama_server"))
    if not reader.data:
        return ServingSettings()
    scenarios = reader.choices("scenarios", SERVING_SCENARIOS, SERVING_SCENARIOS)
    scenarios = tuple(s for s in SERVING_SCENARIOS if s in scenarios)  # run order: the offline bound first
    slo = read_slo(reader.section("slo"), tasks_in_suite)
    if "server" in scenarios and not slo:
        raise reader.fail("slo", "is required with the server scenario: a capacity is the highest rate meeting it")

    def positive(name: str, default: float) -> float:
        value = reader.get(name, (int, float), default)
        if not value > 0:
            raise reader.fail(name, f"must be a positive number, got {value!r}")
        return float(value)

    min_duration, max_duration = positive("min_duration_s", 2.0), positive("max_duration_s", 10.0)
    if max_duration < min_duration:
        raise reader.fail("max_duration_s", f"{max_duration:g} is below min_duration_s ({min_duration:g})")
    precision = positive("precision", 0.05)
    if precision >= 0.5:
        raise reader.fail("precision", f"must be below 0.5 (a share of the capacity, e.g. 0.05), got {precision:g}")
    min_queries = reader.get("min_queries", int)
    settings = ServingSettings(
        scenarios=scenarios, slo=slo, min_duration_s=min_duration, max_duration_s=max_duration,
        min_queries=min_queries, samples=reader.positive_int("samples", 256), precision=precision,
        max_points=reader.positive_int("max_points", 8), max_queue_delay_ms=float(
            reader.get("max_queue_delay_ms", (int, float), 5.0)), compare_tokens=reader.get("compare_tokens", int, 0),
        knee_points=reader.get("knee_points", int, 4), replicates=reader.positive_int("replicates", 1),
        seed=reader.get("seed", int, 0),
        llama_server=read_llama_server(reader.section("llama_server")))
    if settings.max_queue_delay_ms < 0:
        raise reader.fail("max_queue_delay_ms", f"must be 0 or more, got {settings.max_queue_delay_ms:g}")
    for name in ("knee_points", "seed"):
        if getattr(settings, name) < 0:
            raise reader.fail(name, f"must be 0 or more, got {getattr(settings, name)}")
    if settings.compare_tokens < 0:
        raise reader.fail("compare_tokens", f"must be 0 or more, got {settings.compare_tokens}")
    for task in sorted(tasks_in_suite):
        percentile = settings.percentile(task)
        needed = early_stopping_queries(percentile) if percentile else 0
        if min_queries is not None and min_queries < needed:
            raise reader.fail("min_queries", f"{min_queries} is below the {needed} queries LoadGen's early stopping "
                                             f"needs to call a p{percentile * 100:g} bound met; use at least {needed} "
                                             "(or leave it out: that minimum is the default)")
    return settings


def read_slo(reader: Reader, tasks_in_suite: set[str]) -> dict[str, float]:
    import re

    slo, percentiles = {}, {}
    for key in reader.data:
        match = re.fullmatch(r"(latency|ttft|tpot)_p(\d+)_ms", str(key))
        if not match or int(match.group(2)) not in SLO_PERCENTILES:
            raise reader.fail(str(key), "unknown SLO; use latency_pNN_ms (classification), ttft_pNN_ms and "
                                        f"tpot_pNN_ms (generation), NN one of {', '.join(map(str, SLO_PERCENTILES))}")
        value = reader.get(key, (int, float))
        if value is None or not value > 0:
            raise reader.fail(str(key), f"must be a positive number of milliseconds, got {value!r}")
        task = SLO_FIGURES[match.group(1)]
        if task not in tasks_in_suite:
            raise reader.fail(str(key), f"is a {task} SLO, and the suite has no {task} model")
        if percentiles.setdefault(task, match.group(2)) != match.group(2):
            raise reader.fail(str(key), f"{task} SLOs must share one percentile (LoadGen has one per run), "
                                        f"got p{percentiles[task]} and p{match.group(2)}")
        slo[str(key)] = float(value)
    if "text-generation" in percentiles:
        missing = sorted({"ttft", "tpot"} - {k.split("_p")[0] for k in slo})
        if missing:
            name = f"{missing[0]}_p{percentiles['text-generation']}_ms"
            raise reader.fail(name, "is required: a generation SLO bounds both the time to first token and the time "
                                    "per output token")
    return slo

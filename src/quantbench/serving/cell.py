"""One ``test_serving`` cell: a variant under MLPerf LoadGen in one scenario, at every batcher setting.

Each suite batch size is a *setting*: the dynamic batcher's maximum batch (in process), or the
server's parallel slots (a backend with a serving adapter: llama.cpp through llama-server). Per
setting the system is started, warmed up outside LoadGen (its throughput estimate sizes LoadGen's
Offline query), then:

* ``single_stream``: one query at a time (the batch does not matter: one setting, batch 1);
* ``offline``: every query at once, the throughput;
* ``server``: the offline throughput (this run's offline cell, else measured here) bounds the
  capacity search (search.py) at the suite's SLO.

A generation cell with ``serving.compare_tokens`` also serves that many prompts in AccuracyOnly
mode at the best setting and compares the served tokens with the variant's own greedy tokens, one
prompt at a time (record.py says how many continuations differ).

LoadGen's summary and detail logs go under ``<log root>/<cell id>/<setting>/<point>/``.
"""

from __future__ import annotations

import contextlib
import itertools
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from quantbench import registry, tasks
from quantbench.cells import Cell
from quantbench.serving import record as record_mod
from quantbench.serving.inprocess import ClassifierSystem, GeneratorSystem
from quantbench.serving.loadgen import PointSpec, missing_loadgen
from quantbench.serving.logs import PointResult
from quantbench.serving.point import run_accuracy, run_point
from quantbench.serving.search import SearchResult, find_capacity
from quantbench.serving.workload import prompts, text_samples

#: Offline throughput per (suite digest, cell variant, setting) measured by this run's offline cells:
#: the server cell of the same variant reads its bound from here instead of measuring it again.
_OFFLINE_BOUNDS: dict[tuple, PointResult] = {}
#: Margin on the warm-up's throughput estimate when sizing LoadGen's Offline query, so it lasts at
#: least the minimum duration (LoadGen issues expected_qps x min_duration x 1.1 samples).
OFFLINE_MARGIN = 1.5
#: LoadGen's SingleStream early stopping needs this many queries for its p90 (its own minimum).
SINGLE_STREAM_QUERIES = 64
#: The first Server point after a system starts may be unlike the rest (first-time allocations, batch
#: shapes not yet served): in a run on the Xeon VM it had 7 of 459 queries over the bound at 64 QPS where
#: nine later points up to 77 QPS had none, and it set the bisection's bracket. So each setting's search
#: starts with a discarded point at its first rate (half the offline throughput), recorded apart, with
#: seeds of its own (the search's seeds + this).
WARM_UP_SEED = 999
WARM_UP_QUERIES = 64  # or the minimum duration's worth, whichever is more (LoadGen's sizing)
#: Offline has no latency bound, so no early-stopping minimum: at least this many full batches (and
#: LoadGen's own sizing from the expected rate x the minimum duration) measure the throughput.
OFFLINE_BATCHES = 4
OFFLINE_MIN_QUERIES = 16


@dataclass
class SettingResult:
    setting: int
    system: dict[str, Any]
    single: PointResult | None = None
    offline: list[PointResult] = field(default_factory=list)
    offline_from: str = ""
    search: SearchResult | None = None
    warm_up_s: float | None = None


def adapter_for(cell: Cell):
    """The backend's serving adapter for a generation cell, or None (served in process)."""
    return registry.serving_adapter(cell.backend) if cell.is_generation else None


def unavailable(cell: Cell) -> str | None:
    """Why ``cell`` cannot be served on this machine (LoadGen or the backend's server missing), else None."""
    reason = missing_loadgen()
    if reason:
        return reason
    adapter = adapter_for(cell)
    return adapter.unavailable() if adapter else None


def setting_name(cell: Cell) -> str:
    adapter = adapter_for(cell)
    return adapter.setting_name if adapter else "max_batch"


def workload(res, cell: Cell):
    """The query sample library of ``cell``: test texts (classification) or prompts (generation)."""
    serving, task = res.suite.serving, tasks.get(cell.task)
    if cell.is_generation:
        return prompts(task, res.splits.train.texts, res.tokenizer, prompt_len=res.suite.prompt_lens[0],
                       samples=serving.samples, new_tokens=res.suite.new_tokens[0])
    texts = res.splits.test.texts[:serving.samples]
    return text_samples(res.tokenizer, texts, res.suite.model(cell.model).max_seq_len)


@contextlib.contextmanager
def open_system(cell: Cell, variant, samples, *, setting: int, threads: int | None, delay_s: float,
                log_dir: Path, server_options: Any = None) -> Iterator[Any]:
    adapter = adapter_for(cell)
    if adapter is not None:  # server_options: the suite's serving.llama_server (suite/llama_server.py)
        with adapter.open(variant, samples, setting=setting, threads=threads, log_dir=log_dir,
                          options=server_options) as system:
            yield system
        return
    kind = GeneratorSystem if cell.is_generation else ClassifierSystem
    system = kind(variant, samples, max_batch=setting, max_queue_delay_s=delay_s)
    try:
        yield system
    finally:
        system.close()


class ServingRun:
    """The points of one cell: its specs, its log folders, the search."""

    def __init__(self, cell: Cell, suite, *, log_root: Path, relative_to: Path | None):
        self.cell, self.suite, self.serving = cell, suite, suite.serving
        self.bounds = self.serving.bounds(cell.task)
        self.percentile = self.serving.percentile(cell.task) or 0.9
        self.queries = self.serving.queries(cell.task)
        self.log_root, self.relative_to = log_root / cell.id, relative_to

    def spec(self, scenario: str, **kw) -> PointSpec:
        s = self.serving
        bounds = {"latency_ms": self.bounds.get("latency"), "ttft_ms": self.bounds.get("ttft"),
                  "tpot_ms": self.bounds.get("tpot")} if scenario == "server" else {}
        return PointSpec(scenario, s.min_duration_s, s.max_duration_s, kw.pop("min_queries", self.queries),
                         percentile=self.percentile, token_latencies=self.cell.is_generation, **bounds, **kw)

    def point(self, system, spec: PointSpec, log_dir: Path) -> PointResult:
        from quantbench.serving.cpu_use import CpuUse

        cpu = CpuUse(system.server_pid()).start()
        result = run_point(system, spec, log_dir, bounds_ms=self.bounds, relative_to=self.relative_to)
        result.client["cpu"] = cpu.figures(result.wall_s)
        own = system.own_timings()
        if own:
            result.client["system_own_ms"] = own
        return result

    def warm_up(self, system, setting: int) -> tuple[float, float]:
        """Serve one batch twice outside LoadGen; (seconds of the second, its throughput in QPS)."""
        batch = list(range(min(setting, system.sample_count)))
        system.direct(batch)
        seconds = system.direct(batch)
        return seconds, len(batch) / seconds

    def single_stream(self, system, log_dir: Path) -> PointResult:
        latency_s, _ = self.warm_up(system, 1)
        spec = self.spec("single_stream", expected_latency_ms=latency_s * 1000,
                         min_queries=max(self.queries, SINGLE_STREAM_QUERIES))
        return self.point(system, spec, log_dir / "single_stream")

    def offline(self, system, setting: int, log_dir: Path) -> list[PointResult]:
        _, qps = self.warm_up(system, setting)
        queries = max(OFFLINE_MIN_QUERIES, OFFLINE_BATCHES * setting)
        first = self.point(system, self.spec("offline", expected_qps=qps * OFFLINE_MARGIN, min_queries=queries),
                           log_dir / "offline")
        if first.valid or "the minimum duration was not reached" not in first.reasons or not first.completed_qps:
            return [first]
        # LoadGen sized its query from an estimate that was too low: once more from what it measured.
        again = self.spec("offline", expected_qps=first.completed_qps * OFFLINE_MARGIN, min_queries=queries)
        return [first, self.point(system, again, log_dir / "offline-2")]

    def server(self, system, setting: int, upper: PointResult, log_dir: Path,
               start_again: Callable[[int], contextlib.AbstractContextManager] | None = None) -> SearchResult:
        """The capacity search at ``setting``, after a discarded warm-up point (``WARM_UP_SEED``).

        With ``serving.replicates`` > 1, ``start_again(replicate)`` starts the system afresh (a new
        server process, a new batcher) for each further replicate of the knee's points; each is warmed
        up with direct batches as the first was (no warm-up point: the knee's rates are known by then,
        and none of the fresh servers' first points stood out), and closed when its points are done."""
        self.warm_up(system, setting)
        warm_up_point = self.point(system, self.spec("server", target_qps=upper.completed_qps / 2,
                                                     min_queries=min(self.queries, WARM_UP_QUERIES),
                                                     seed=self.serving.seed + 1000 * setting + WARM_UP_SEED),
                                   log_dir / "00-server-warm-up")
        counter = itertools.count(1)
        replicas = contextlib.ExitStack()

        def measure(rate: float, seed: int) -> PointResult:
            return self.point(system, self.spec("server", target_qps=rate, seed=seed),
                              log_dir / f"{next(counter):02d}-server")

        def restart(replicate: int) -> None:
            nonlocal system
            replicas.close()  # the previous replicate's system; the first belongs to the caller
            system = replicas.enter_context(start_again(replicate))
            self.warm_up(system, setting)

        floor = self.queries / self.serving.max_duration_s
        why = (f"below {floor:.4g} QPS LoadGen cannot issue its {self.queries} queries within a point's "
               f"{self.serving.max_duration_s:g} s (serving.max_duration_s)")
        replicates = self.serving.replicates if start_again is not None else 1
        with replicas:
            result = find_capacity(measure, upper_qps=upper.completed_qps, precision=self.serving.precision,
                                   max_points=self.serving.max_points, bounds_ms=self.bounds,
                                   percentile=self.percentile, min_rate=floor, min_rate_why=why,
                                   knee_points=self.serving.knee_points, seed=self.serving.seed + 1000 * setting,
                                   replicates=replicates, restart=restart if replicates > 1 else None)
        result.warm_up_point = warm_up_point
        return result

    def compare_tokens(self, system, variant, samples, log_dir: Path, *, stop_ids: set[int]) -> dict[str, Any]:
        """Served greedy tokens against the variant's own, one prompt at a time (AccuracyOnly, Offline:
        every prompt at once, so the server batches them)."""
        count = min(self.serving.compare_tokens, system.sample_count)
        spec = PointSpec("offline", self.serving.min_duration_s, self.serving.max_duration_s, count,
                         expected_qps=1.0, token_latencies=True, accuracy=True, accuracy_samples=count)
        served = run_accuracy(system, spec, log_dir / "accuracy")
        out = record_mod.token_agreement(variant, samples, served, stop_ids=stop_ids)
        # Flash attention alone changes greedy continuations (5 of 8 on SmolLM2 in test_llama_server.py): a
        # server on its default (auto) against bindings without it mixes that with continuous batching.
        served_fa = ((system.describe().get("server_settings") or {}).get("flash_attn") or {}).get("value")
        reference_fa = getattr(variant, "flash_attn", None)
        if served_fa is not None and reference_fa is not None:
            out["flash_attention"] = {"served": served_fa, "reference": "on" if reference_fa else "off"}
            if str(served_fa) != out["flash_attention"]["reference"]:
                out["note"] = (f"the server ran flash attention {served_fa}, the reference (the bindings) "
                               f"{out['flash_attention']['reference']}: flash attention alone changes greedy "
                               "continuations, so differences here are not continuous batching's alone")
        return out


def measure_serving(benchmark, run, pool, cell: Cell, *, log_root: Path, relative_to: Path | None = None,
                    batch_sizes: tuple[int, ...] = ()) -> dict[str, Any]:
    """Run one serving cell through pytest-benchmark (one round: the whole cell); return its extra_info.

    ``batch_sizes`` narrows the settings to those of the suite's batch sizes (``--batch-size``)."""
    res = run.for_cell(cell, timed=False)
    suite = res.suite
    built = pool.get(cell, res.source, res.settings)
    variant = built.variant
    samples = workload(res, cell)
    serving = ServingRun(cell, suite, log_root=log_root, relative_to=relative_to)
    reference = run.drift_reference(cell.backend, cell.device) if suite.measure.drift_reference else None
    reference_s = [reference.time_once() for _ in range(3)] if reference else []
    settings = [1] if cell.scenario == "single_stream" else \
        [b for b in suite.batch_sizes if not batch_sizes or b in batch_sizes]
    results: list[SettingResult] = []
    extra_facts: dict[str, Any] = {}
    name = setting_name(cell)

    def serve_every_setting() -> None:
        for setting in settings:
            log_dir = serving.log_root / f"{name}-{setting}"

            def start(replicate: int = 0, setting: int = setting, log_dir: Path = log_dir):
                return open_system(cell, variant, samples, setting=setting, threads=suite.measure.threads,
                                   delay_s=suite.serving.max_queue_delay_ms / 1000,
                                   log_dir=log_dir / f"replicate-{replicate}" if replicate else log_dir,
                                   server_options=suite.serving.llama_server)

            with start() as system:
                result = SettingResult(setting, system.describe())
                if cell.scenario == "single_stream":
                    result.single = serving.single_stream(system, log_dir)
                elif cell.scenario == "offline":
                    result.offline = serving.offline(system, setting, log_dir)
                    _OFFLINE_BOUNDS[_bound_key(suite, cell, setting)] = result.offline[-1]
                else:
                    bound = _OFFLINE_BOUNDS.get(_bound_key(suite, cell, setting))
                    result.offline_from = "this run's offline cell" if bound else "measured in this cell"
                    if bound is None:
                        result.offline = serving.offline(system, setting, log_dir)
                        bound = result.offline[-1]
                    result.search = serving.server(system, setting, bound, log_dir, start_again=start)
                results.append(result)
        if cell.is_generation and cell.scenario == "server" and suite.serving.compare_tokens:
            best = record_mod.best_setting(results) or results[-1]
            log_dir = serving.log_root / f"{name}-{best.setting}"
            with open_system(cell, variant, samples, setting=best.setting, threads=suite.measure.threads,
                             delay_s=suite.serving.max_queue_delay_ms / 1000, log_dir=log_dir / "tokens",
                             server_options=suite.serving.llama_server) as system:
                stop_ids = set(getattr(res.tokenizer, "all_special_ids", None) or ())
                extra_facts["served_tokens"] = {"setting": best.setting, **serving.compare_tokens(
                    system, variant, samples, log_dir / "tokens", stop_ids=stop_ids)}

    benchmark.params = cell.params()
    benchmark.group = "serving"
    try:
        benchmark.pedantic(serve_every_setting, rounds=1, iterations=1, warmup_rounds=0)
    except BaseException:
        # pytest-benchmark marks a benchmark failed on an Exception only: after Ctrl-C it would write an
        # empty one into the JSON and fail there (min() of no rounds), losing the run file.
        benchmark.has_error = True
        raise
    if reference:
        reference_s += [reference.time_once() for _ in range(3)]
    extra = record_mod.serving_record(
        cell, results, serving=serving, setting_name=name, built=built, source=res.source,
        threads=suite.measure.threads, log_root=serving.log_root, relative_to=relative_to, **extra_facts)
    if reference:  # one pytest-benchmark round, so one reference time: the median around the cell
        extra.update(reference=reference.describe(), reference_s=[round(statistics.median(reference_s), 9)])
    benchmark.extra_info.update(extra)
    return extra


def _bound_key(suite, cell: Cell, setting: int) -> tuple:
    return (suite.digest, suite.name, cell.variant_id, setting)

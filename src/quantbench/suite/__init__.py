"""Suite files: a YAML sweep definition, validated into frozen dataclasses.

``reader.py`` reads one YAML mapping and names the file and key in every error; ``serving.py``
holds the ``serving:`` section (MLPerf LoadGen scenarios and the SLO).

Every validation error names the file, the key (as a dotted path) and what is allowed, so a
typo costs one line of output, not a traceback. See ``suites/default.yaml`` for every key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantbench import registry, task_kinds
from quantbench.errors import SuiteError, UnknownNameError
from quantbench.results import lm_eval_budget
from quantbench.suite.reader import Reader as _Reader
from quantbench.suite.serving import ServingSettings, read_serving
from quantbench.yaml_text import parse_yaml

#: The shipped suites, inside the package so an installed quantbench has them (suites/ in a checkout links here).
SUITES_DIR = Path(__file__).resolve().parents[1] / "suites"
MODEL_SOURCES = ("embedded", "path", "hub")
DATASET_SOURCES = ("embedded", "csv", "jsonl", "hf")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
#: What ``source: embedded`` means per task (an ``embedded:`` key picks one by name).
EMBEDDED_MODELS = {"minilm-tweets": task_kinds.CLASSIFICATION, "smollm2": task_kinds.GENERATION}
DEFAULT_EMBEDDED = {task_kinds.CLASSIFICATION: "minilm-tweets", task_kinds.GENERATION: "smollm2"}
EMBEDDED_GGUF = frozenset({"smollm2"})  # embedded models that ship as a GGUF file


@dataclass(frozen=True)
class ModelSpec:
    name: str
    source: str  # one of MODEL_SOURCES
    location: str | None = None  # local path or hub id; the embedded model's name for source: embedded
    gguf_file: str | None = None  # hub models: the repository's GGUF file to use (a path model names a .gguf)
    task: str = task_kinds.CLASSIFICATION
    max_seq_len: int = 128
    trust_remote_code: bool = False

    @property
    def is_generation(self) -> bool:
        return self.task == task_kinds.GENERATION

    @property
    def has_gguf(self) -> bool:
        """The entry names a GGUF file (llama.cpp variants build from it)."""
        return (self.source == "embedded" and self.location in EMBEDDED_GGUF) or bool(self.gguf_file) or \
            (self.source == "path" and str(self.location).endswith(".gguf"))


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    source: str  # one of DATASET_SOURCES
    path: str | None = None
    split: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    sensitive_columns: tuple[str, ...] = ()
    label_map: tuple[tuple[str, int], ...] = ()
    max_samples: int = 2000
    train_samples: int = 6000
    seed: int = 0
    encoding: str = "utf-8"


@dataclass(frozen=True)
class MeasureSettings:
    warmup_rounds: int = 3
    min_rounds: int = 10
    max_rounds: int = 200
    min_time_s: float = 1.0
    max_time_s: float = 10.0
    threads: int | None = None
    end_to_end: bool = False
    eval_batch_size: int = 64
    memory: str = "worker"  # "worker": a fresh process per variant; "inprocess": faster, less isolated
    # Time a fixed reference workload between rounds (measures/drift.py) so gates can divide
    # out what the machine did; ``reference_every_s`` apart at most.
    drift_reference: bool = True
    reference_every_s: float = 0.25
    # Measure this machine's peak matmul and bandwidth once (cached) and record each cell's share.
    efficiency: bool = True
    # Generation cells: extra generate calls stopped after the first token, so the time to first
    # token has enough samples for the gate without more (32-token) generate rounds.
    prefill_rounds: int = 3
    # Generation cells: tokens per warm-up generate call (optimum-benchmark warms up on 2). The
    # prefill and a decode step at the cell's shape are what a first call pays for; None: all of them.
    warmup_new_tokens: int | None = 2
    # Rounds continue (within max_rounds and max_time_s) until the ``confidence`` interval of the
    # median is within ± ``precision`` of it (measures/rounds.py): ± half the gate's default 10 %
    # timing threshold, so the gate can resolve it. None: rounds fill min_time_s, as before.
    precision: float | None = 0.05
    confidence: float = 0.99
    # Generation cells: prefill-only rounds continue past prefill_rounds until the time to first
    # token converges the same way, up to this many (and half of max_time_s).
    max_prefill_rounds: int = 30
    # Classification cells: take the rounds in this many processes (the harness's, then fresh
    # workers), more up to ``max_processes`` until the processes' interval of the median is within
    # ± ``precision`` (measures/processes.py). Where the noise lives between processes, this is what
    # lets a gate resolve a change between two runs; 1 keeps a first-look sweep fast.
    processes: int = 1
    max_processes: int = 1


@dataclass(frozen=True)
class CalibrationSettings:
    method: str = "minmax"
    samples: int = 256


@dataclass(frozen=True)
class LmEvalSettings:
    """lm-evaluation-harness tasks scored on every generation variant (bench/test_lm_eval.py).

    ``tasks``: lm-eval task names (the shipped ``tweets_sentiment``, a task under ``include_path``,
    or with hub access any lm-eval task); ``include_path``: folders of local task YAMLs (relative
    to the suite file); ``limit``: documents per task (an integer, or a fraction below 1, as
    lm-eval's ``--limit``); ``num_fewshot``: None keeps each task's own.
    """

    tasks: tuple[str, ...]
    include_path: tuple[str, ...] = ()
    limit: int | float | None = None
    num_fewshot: int | None = None


@dataclass(frozen=True)
class QualitySettings:
    """How much held-out text the language-model quality figures read (generation models)."""

    texts: int = 64  # perplexity, KL and top-1 agreement
    continuation_prompts: int = 16  # greedy continuation agreement with fp32
    continuation_tokens: int = 16
    continuation_prompt_tokens: int = 12  # each prompt: the first tokens (BOS included) of a test text
    zero_shot_texts: int = 300  # zero-shot sentiment accuracy
    probe_pairs: int | None = None  # counterfactual pairs scored (None: all); a seeded subset otherwise
    # Which variants are also scored in served batches of each suite batch size, to show what
    # batching costs (quality/batching.py): "sensitive" (the batch-sensitive methods, and fp32 as
    # the control), "all", or "off".
    batch_sensitivity: str = "sensitive"
    lm_eval: LmEvalSettings | None = None  # off unless the suite has a quality.lm_eval section


RECOMMEND_BY = ("speed", "capacity")


#: The recommendation's rule for generation models: every listed figure within its budget.
DEFAULT_QUALITY_BUDGET = {"kl_divergence": 0.05, "perplexity_delta_pct": 3.0}
QUALITY_BUDGET_KEYS = ("kl_divergence", "perplexity_delta_pct", "top1_agreement_min", "accuracy_delta_pts_min")


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path | None
    models: tuple[ModelSpec, ...]
    dataset: DatasetSpec
    quantization: tuple[str, ...]
    backends: tuple[str, ...]
    devices: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    seq_lens: tuple[int, ...]
    measure: MeasureSettings
    calibration: CalibrationSettings
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    exclude: tuple[dict[str, Any], ...] = ()
    fairness: dict[str, Any] = field(default_factory=dict)
    gates: dict[str, Any] | None = None
    # evaluate metrics for test_accuracy: built-in names, hub metric names or local script paths
    metrics: tuple[str, ...] = ("accuracy", "f1", "precision", "recall")
    description: str = ""
    digest: str = ""
    # generation axes (batch_sizes are shared with classification)
    prompt_lens: tuple[int, ...] = (64,)
    new_tokens: tuple[int, ...] = (32,)
    quality: QualitySettings = field(default_factory=QualitySettings)
    quality_budget: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_QUALITY_BUDGET))
    price_per_hour: float | None = None  # USD per machine-hour: cost per million inferences / tokens
    serving: ServingSettings = field(default_factory=ServingSettings)
    recommend_by: str = "speed"  # "capacity": rank by capacity at the SLO (needs a server scenario)

    @property
    def tasks(self) -> dict[str, str]:
        return {m.name: m.task for m in self.models}

    def model(self, name: str) -> ModelSpec:
        return next(m for m in self.models if m.name == name)

    def summary(self) -> dict[str, Any]:
        """What a run file records about the suite it ran."""
        return {"name": self.name, "path": str(self.path) if self.path else None, "sha256": self.digest,
                "quantization": list(self.quantization), "backends": list(self.backends),
                "devices": list(self.devices), "batch_sizes": list(self.batch_sizes),
                "seq_lens": list(self.seq_lens), "dataset": self.dataset.name,
                "models": [m.name for m in self.models], "tasks": self.tasks,
                "prompt_lens": list(self.prompt_lens), "new_tokens": list(self.new_tokens),
                "quality_budget": dict(self.quality_budget), "price_per_hour": self.price_per_hour,
                "fairness_tolerance": self.fairness.get("tolerance", 0.02),
                **({"serving": self.serving.summary()} if self.serving.scenarios else {}),
                "recommend_by": self.recommend_by}


def _read_model(reader: _Reader) -> ModelSpec:
    reader.check_keys(("name", "source", "path", "hub_id", "gguf_file", "embedded", "task", "max_seq_len",
                       "trust_remote_code"))
    name = reader.get("name", str, required=True)
    source = reader.choice("source", MODEL_SOURCES, "embedded")
    try:
        task = task_kinds.canonical(reader.get("task", str, task_kinds.CLASSIFICATION))
    except UnknownNameError:
        raise reader.fail("task", f"{reader.data['task']!r} is not allowed; allowed values: "
                                  f"{', '.join(task_kinds.names())}") from None
    location = None
    gguf_file = reader.get("gguf_file", str) if source == "hub" else None
    if source != "hub" and reader.data.get("gguf_file") is not None:
        raise reader.fail("gguf_file", "is for hub models; a local GGUF model is `source: path` with the .gguf path")
    if source == "path":
        location = reader.get("path", str, required=True)
    elif source == "hub":
        location = reader.get("hub_id", str, required=True)
    else:
        location = reader.choice("embedded", tuple(EMBEDDED_MODELS), DEFAULT_EMBEDDED[task])
        if EMBEDDED_MODELS[location] != task:
            raise reader.fail("embedded", f"the embedded model {location!r} is a {EMBEDDED_MODELS[location]} "
                                          f"model, not {task}")
    if (gguf_file or (location or "").endswith(".gguf")) and task != task_kinds.GENERATION:
        raise reader.fail("task", f"a GGUF model is a causal LM: set `task: {task_kinds.GENERATION}`")
    return ModelSpec(name=name, source=source, location=location, gguf_file=gguf_file, task=task,
                     max_seq_len=reader.positive_int("max_seq_len", 128),
                     trust_remote_code=reader.get("trust_remote_code", bool, False))


def _read_dataset(reader: _Reader) -> DatasetSpec:
    reader.check_keys(("name", "source", "path", "split", "text_column", "label_column", "sensitive_columns",
                       "label_map", "max_samples", "train_samples", "seed", "encoding"))
    source = reader.choice("source", DATASET_SOURCES, "embedded")
    path = reader.get("path", str, required=source != "embedded")
    label_map = reader.get("label_map", dict, {})
    for label, index in label_map.items():
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise reader.fail(f"label_map.{label}", f"must map to a class id (integer >= 0), got {index!r}")
    sensitive = reader.get("sensitive_columns", (list, str), [])
    return DatasetSpec(
        name=reader.get("name", str, "tweets" if source == "embedded" else Path(path).stem),
        source=source, path=path, split=reader.get("split", str),
        text_column=reader.get("text_column", str, "text"),
        label_column=reader.get("label_column", str, "label"),
        sensitive_columns=tuple([sensitive] if isinstance(sensitive, str) else sensitive),
        label_map=tuple((str(k), v) for k, v in label_map.items()),
        max_samples=reader.positive_int("max_samples", 2000),
        train_samples=reader.positive_int("train_samples", 6000),
        seed=reader.get("seed", int, 0), encoding=reader.get("encoding", str, "utf-8"),
    )


def _read_measure(reader: _Reader) -> MeasureSettings:
    reader.check_keys(("warmup_rounds", "min_rounds", "max_rounds", "min_time_s", "max_time_s", "threads",
                       "end_to_end", "eval_batch_size", "memory", "drift_reference", "reference_every_s",
                       "efficiency", "prefill_rounds", "warmup_new_tokens", "precision", "confidence",
                       "max_prefill_rounds", "processes", "max_processes"))
    warmup = reader.get("warmup_rounds", int, 3)
    if warmup < 1:
        raise reader.fail("warmup_rounds", f"must be at least 1 (timings need a warm-up), got {warmup}")
    min_rounds = reader.positive_int("min_rounds", 10)
    max_rounds = reader.positive_int("max_rounds", 200)
    if max_rounds < min_rounds:
        raise reader.fail("max_rounds", f"{max_rounds} is below min_rounds ({min_rounds})")
    threads = reader.get("threads", int)
    if threads is not None and threads < 1:
        raise reader.fail("threads", f"must be a positive integer or null, got {threads}")
    prefill_rounds = reader.get("prefill_rounds", int, 3)
    if prefill_rounds < 0:
        raise reader.fail("prefill_rounds", f"must be 0 or more, got {prefill_rounds}")
    explicit_null = "warmup_new_tokens" in reader.data and reader.data["warmup_new_tokens"] is None
    warmup_new_tokens = None if explicit_null else reader.get("warmup_new_tokens", int, 2)
    if warmup_new_tokens is not None and warmup_new_tokens < 2:
        raise reader.fail("warmup_new_tokens", "must be 2 or more (a prefill and a decode step), or null for "
                          f"the cell's new tokens, got {warmup_new_tokens}")
    precision_null = "precision" in reader.data and reader.data["precision"] is None
    precision = None if precision_null else reader.get("precision", (int, float), 0.05)
    if precision is not None and not 0 < precision < 1:
        raise reader.fail("precision", "must be a share of the median between 0 and 1 (0.05 = ± 5 %), or null "
                                       f"for no convergence test, got {precision!r}")
    confidence = reader.get("confidence", (int, float), 0.99)
    if not 0.5 <= confidence < 1:
        raise reader.fail("confidence", f"must be at least 0.5 and below 1 (0.99 = 99 %), got {confidence!r}")
    max_prefill = reader.positive_int("max_prefill_rounds", 30)
    every_s = reader.get("reference_every_s", (int, float), 0.25)
    if not every_s > 0:
        raise reader.fail("reference_every_s", f"must be a positive number of seconds, got {every_s}")
    processes = reader.positive_int("processes", 1)
    max_processes = reader.positive_int("max_processes", processes)
    if max_processes < processes:
        raise reader.fail("max_processes", f"{max_processes} is below processes ({processes})")
    end_to_end = reader.get("end_to_end", bool, False)
    if end_to_end and max_processes > 1:
        raise reader.fail("processes", "end_to_end timing runs in the harness's process only (its workers get "
                                       f"tokenized inputs); set processes to 1, got {processes}")
    return MeasureSettings(
        processes=processes, max_processes=max_processes,
        warmup_rounds=warmup, min_rounds=min_rounds, max_rounds=max_rounds,
        min_time_s=float(reader.get("min_time_s", (int, float), 1.0)),
        max_time_s=float(reader.get("max_time_s", (int, float), 10.0)),
        threads=threads, end_to_end=end_to_end,
        eval_batch_size=reader.positive_int("eval_batch_size", 64),
        memory=reader.choice("memory", ("worker", "inprocess"), "worker"),
        drift_reference=reader.get("drift_reference", bool, True), reference_every_s=float(every_s),
        efficiency=reader.get("efficiency", bool, True), prefill_rounds=prefill_rounds,
        warmup_new_tokens=warmup_new_tokens, precision=None if precision is None else float(precision),
        confidence=float(confidence), max_prefill_rounds=max_prefill)


def _read_exclusions(reader: _Reader, axes: dict[str, tuple]) -> tuple[dict[str, Any], ...]:
    raw = reader.get("exclude", list, [])
    rules = []
    for i, rule in enumerate(raw):
        if not isinstance(rule, dict) or not rule:
            raise reader.fail(f"exclude[{i}]", f"must be a non-empty mapping of cell keys, got {rule!r}")
        for key in rule:
            if key not in axes:
                raise reader.fail(f"exclude[{i}].{key}", f"unknown cell key; allowed: {', '.join(axes)}")
        rules.append(dict(rule))
    return tuple(rules)


def _read_lm_eval(reader: _Reader) -> LmEvalSettings | None:
    if not reader.data:
        return None
    reader.check_keys(("tasks", "include_path", "limit", "num_fewshot"))
    if "tasks" not in reader.data:
        raise reader.fail("tasks", "is required: the lm-eval task names to run (e.g. [tweets_sentiment])")
    tasks_ = reader.list_of("tasks", str, ())
    include = reader.get("include_path", (list, str), [])
    include = [include] if isinstance(include, str) else include
    for i, folder in enumerate(include):
        if not isinstance(folder, str) or not folder:
            raise reader.fail(f"include_path[{i}]", f"expected a folder path, got {folder!r}")
    limit = reader.get("limit", (int, float))
    if limit is not None and not (limit >= 1 and float(limit).is_integer() or 0 < limit < 1):
        raise reader.fail("limit", f"must be a positive whole number of documents or a fraction below 1, got {limit!r}")
    shots = reader.get("num_fewshot", int)
    if shots is not None and shots < 0:
        raise reader.fail("num_fewshot", f"must be 0 or more, got {shots}")
    return LmEvalSettings(tasks=tasks_, include_path=tuple(include),
                          limit=int(limit) if limit is not None and limit >= 1 else limit, num_fewshot=shots)


def _read_quality(reader: _Reader) -> QualitySettings:
    reader.check_keys(("texts", "continuation_prompts", "continuation_tokens", "continuation_prompt_tokens",
                       "zero_shot_texts", "probe_pairs", "batch_sensitivity", "lm_eval"))
    defaults = QualitySettings()
    probe_pairs = reader.get("probe_pairs", int)
    if probe_pairs is not None and probe_pairs < 1:
        raise reader.fail("probe_pairs", f"must be a positive integer or null, got {probe_pairs}")
    return QualitySettings(texts=reader.positive_int("texts", defaults.texts),
                           continuation_prompts=reader.positive_int("continuation_prompts",
                                                                    defaults.continuation_prompts),
                           continuation_tokens=reader.positive_int("continuation_tokens", defaults.continuation_tokens),
                           continuation_prompt_tokens=reader.positive_int("continuation_prompt_tokens",
                                                                          defaults.continuation_prompt_tokens),
                           zero_shot_texts=reader.positive_int("zero_shot_texts", defaults.zero_shot_texts),
                           probe_pairs=probe_pairs,
                           batch_sensitivity=_read_batch_sensitivity(reader, defaults.batch_sensitivity),
                           lm_eval=_read_lm_eval(reader.section("lm_eval")))


BATCH_SENSITIVITY = ("sensitive", "all", "off")


def _read_batch_sensitivity(reader: _Reader, default: str) -> str:
    value = reader.get("batch_sensitivity", (str, bool), default)
    value = {True: "all", False: "off"}.get(value, value) if isinstance(value, bool) else value
    if value not in BATCH_SENSITIVITY:
        raise reader.fail("batch_sensitivity", f"{value!r} is not one of: {', '.join(BATCH_SENSITIVITY)}")
    return value


def _read_cost(reader: _Reader) -> float | None:
    reader.check_keys(("price_per_hour",))
    price = reader.get("price_per_hour", (int, float))
    if price is not None and not price > 0:
        raise reader.fail("price_per_hour", f"must be a positive price in USD per hour, got {price!r}")
    return None if price is None else float(price)


def _read_quality_budget(reader: _Reader) -> dict[str, float]:
    unknown = sorted(k for k in reader.data if k not in QUALITY_BUDGET_KEYS and lm_eval_budget(str(k)) is None)
    if unknown:
        raise reader.fail(unknown[0], f"unknown key; allowed keys: {', '.join(QUALITY_BUDGET_KEYS)}, or "
                                      "lm_eval.<task>.<metric>_delta_min / _delta_max (an lm-eval figure's change "
                                      "against fp32)")
    if not reader.data:
        return dict(DEFAULT_QUALITY_BUDGET)
    budget = {}
    for key in reader.data:
        value = reader.get(key, (int, float))
        if value is None:
            continue
        if key in ("kl_divergence", "perplexity_delta_pct") and value < 0:
            raise reader.fail(key, f"must be >= 0, got {value!r}")
        budget[key] = float(value)
    return budget


def parse_suite(data: Any, *, where: str, path: Path | None = None, digest: str = "") -> Suite:
    top = _Reader(where, data)
    top.check_keys(("name", "description", "models", "dataset", "quantization", "backends", "devices",
                    "batch_sizes", "seq_lens", "measure", "calibration", "method_options", "exclude",
                    "fairness", "gates", "metrics", "prompt_lens", "new_tokens", "quality", "quality_budget", "cost",
                    "serving", "recommend_by"))
    raw_models = top.get("models", list, required=True)
    if not raw_models:
        raise top.fail("models", "must list at least one model")
    models = tuple(_read_model(_Reader(where, m, f"models[{i}].")) for i, m in enumerate(raw_models))
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise top.fail("models", f"model names must be unique, got {names}")
    quantization = top.choices("quantization", registry.quant_methods(), ("fp32",))
    backends = top.choices("backends", registry.backends(), ("pytorch",))
    devices = top.choices("devices", registry.DEVICES, ("cpu",))
    calib = top.section("calibration")
    calib.check_keys(("method", "samples"))
    method_options = top.get("method_options", dict, {})
    for method, options in method_options.items():
        if method not in registry.quant_methods():
            raise top.fail(f"method_options.{method}",
                           f"unknown method; allowed: {', '.join(registry.quant_methods())}")
        if not isinstance(options, dict):
            raise top.fail(f"method_options.{method}", f"must be a mapping, got {options!r}")
        allowed = registry.method_option_names(method)
        for key, value in options.items():
            if key not in allowed:
                raise top.fail(f"method_options.{method}.{key}",
                               f"unknown option; allowed: {', '.join(allowed) or '(none)'}")
            # Typed by the runtimes' option dataclasses: the value must fit some backend's field.
            reason = registry.check_method_option(method, key, value)
            if reason:
                raise SuiteError(f"{where}: {reason}")
    axes = {"model": names, "quant": quantization, "backend": backends, "device": devices,
            "batch_size": (), "seq_len": (), "prompt_len": (), "new_tokens": (), "task": (), "scenario": ()}
    serving = read_serving(top.section("serving"), {m.task for m in models})
    recommend_by = top.choice("recommend_by", RECOMMEND_BY, "speed")
    if recommend_by == "capacity" and "server" not in serving.scenarios:
        raise top.fail("recommend_by", "capacity needs a serving section with the server scenario")
    fairness = top.section("fairness")
    fairness.check_keys(("probe", "probe_path", "tolerance", "positive_label"))
    gates = top.get("gates", dict)
    metric_names = top.list_of("metrics", str, ("accuracy", "f1", "precision", "recall"))
    if "accuracy" not in metric_names:
        raise top.fail("metrics", f"must include 'accuracy' (the fp32 comparison needs it), got {list(metric_names)}")
    quality = _read_quality(top.section("quality"))
    quality_budget = _read_quality_budget(top.section("quality_budget"))
    _check_lm_eval(top, quality.lm_eval, models, quality_budget)
    return Suite(
        name=top.get("name", str, path.stem if path else "suite"),
        description=top.get("description", str, ""),
        path=path, models=models, dataset=_read_dataset(top.section("dataset")),
        quantization=quantization, backends=backends, devices=devices,
        batch_sizes=top.list_of("batch_sizes", int, (1,)), seq_lens=top.list_of("seq_lens", int, (128,)),
        measure=_read_measure(top.section("measure")),
        calibration=CalibrationSettings(method=calib.choice("method", CALIBRATION_METHODS, "minmax"),
                                        samples=calib.positive_int("samples", 256)),
        method_options={k: dict(v) for k, v in method_options.items()},
        exclude=_read_exclusions(top, axes),
        fairness={"probe": fairness.get("probe", bool, True), "probe_path": fairness.get("probe_path", str),
                  "tolerance": float(fairness.get("tolerance", (int, float), 0.02)),
                  # Which label counts as positive (selection rates, the probe); None: one named "positive".
                  "positive_label": fairness.get("positive_label", (str, int))},
        gates=gates, metrics=metric_names, digest=digest,
        prompt_lens=top.list_of("prompt_lens", int, (64,)), new_tokens=top.list_of("new_tokens", int, (32,)),
        quality=quality, quality_budget=quality_budget,
        price_per_hour=_read_cost(top.section("cost")), serving=serving, recommend_by=recommend_by,
    )


def _check_lm_eval(top: _Reader, settings: LmEvalSettings | None, models: tuple[ModelSpec, ...],
                   budget: dict[str, float]) -> None:
    """lm-eval scores causal LMs, and a budget on an lm-eval figure names a task the suite runs."""
    if settings is not None and not any(m.is_generation for m in models):
        raise top.fail("quality.lm_eval", f"needs a {task_kinds.GENERATION} model; this suite has none")
    for key in budget:
        found = lm_eval_budget(key)
        if found is None:
            continue
        task = found[0].split(".")[1]
        if settings is None or task not in settings.tasks:
            raise top.fail(f"quality_budget.{key}", f"names lm-eval task {task!r}, which quality.lm_eval.tasks "
                                                    f"does not run ({', '.join(settings.tasks) if settings else 'none'})")


def resolve_suite_path(name_or_path: str) -> Path:
    """``default`` means ``suites/default.yaml``; anything else is a path."""
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if not candidate.is_file():
            raise SuiteError(f"suite file not found: {candidate}")
        return candidate.resolve()
    named = SUITES_DIR / f"{name_or_path}.yaml"
    if named.is_file():
        return named
    known = sorted(p.stem for p in SUITES_DIR.glob("*.yaml")) if SUITES_DIR.is_dir() else []
    raise SuiteError(f"unknown suite {name_or_path!r}: not a file, and not one of {', '.join(known) or '(none)'}")


def _check_saved_architecture(model: ModelSpec) -> None:
    """A local checkpoint whose head is of another task fails at collection, in one line.

    Reads config.json only (no transformers import, so collection stays fast); the build checks
    again with the loaded config, for hub and embedded models too.
    """
    import json

    config = Path(model.location) / "config.json"
    if config.is_file():
        try:
            architectures = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
        except (OSError, ValueError, AttributeError):
            return  # an unreadable config fails later with transformers' own message
        task_kinds.check_architectures(list(architectures), task=model.task, model=model.name, path=model.location)


def load_suite(name_or_path: str) -> Suite:
    path = resolve_suite_path(name_or_path)
    text = path.read_text(encoding="utf-8")
    data = parse_yaml(text, where=str(path), error=SuiteError)
    suite = parse_suite(data, where=str(path), path=path, digest=hashlib.sha256(text.encode()).hexdigest()[:16])
    # Relative dataset and model paths are relative to the suite file, then checked.
    return _resolve_paths(suite)


def _resolve_paths(suite: Suite) -> Suite:
    import dataclasses

    base = suite.path.parent if suite.path else Path.cwd()

    def resolve(p: str) -> str:
        candidate = Path(p).expanduser()
        return str((candidate if candidate.is_absolute() else base / candidate).resolve())

    models = tuple(dataclasses.replace(m, location=resolve(m.location)) if m.source == "path" else m
                   for m in suite.models)
    for m in models:
        if m.source == "path" and m.location.endswith(".gguf"):
            if not Path(m.location).is_file():
                raise SuiteError(f"{suite.path}: models[{m.name}].path: GGUF file not found: {m.location}")
            continue
        if m.source == "path" and not Path(m.location).is_dir():
            raise SuiteError(f"{suite.path}: models[{m.name}].path: not a directory: {m.location} "
                             "(a GGUF model's path is its .gguf file)")
        if m.source == "path":
            _check_saved_architecture(m)
    dataset = suite.dataset
    if dataset.path:
        dataset = dataclasses.replace(dataset, path=resolve(dataset.path))
    # A metric given as a script path is relative to the suite too; names stay names.
    metric_names = tuple(resolve(m) if m.endswith(".py") else m for m in suite.metrics)
    quality = suite.quality
    if quality.lm_eval and quality.lm_eval.include_path:
        folders = tuple(resolve(p) for p in quality.lm_eval.include_path)
        for given, folder in zip(quality.lm_eval.include_path, folders):
            if not Path(folder).is_dir():
                raise SuiteError(f"{suite.path}: quality.lm_eval.include_path: not a folder: {given} ({folder})")
        quality = dataclasses.replace(quality, lm_eval=dataclasses.replace(quality.lm_eval, include_path=folders))
    return dataclasses.replace(suite, models=models, dataset=dataset, metrics=metric_names, quality=quality)

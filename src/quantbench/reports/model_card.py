"""Model cards, one per variant (model x quant x backend x device), built with huggingface_hub.

The YAML front matter is ``ModelCardData`` with ``EvalResult`` entries, so the Hub and any
tool reading ``model-index`` get the accuracy and fairness figures (plain values: the format has
no field for an interval); the body, which shows each figure's interval, comes from
``templates/model_card.md.j2``. huggingface_hub renders that template with a plain
``jinja2.Template`` (no autoescape), so every value is escaped for Markdown here, before
rendering. ``ModelCard.validate()`` is never called: it needs the Hub.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from quantbench import isa
from quantbench.reports.batch_sensitivity import batch_rows
from quantbench.reports.charts import fmt
from quantbench.reports.model import Analysis, VariantSummary
from quantbench.reports.lm_eval_view import floor_of, floored_names
from quantbench.reports.quality_view import figure_text, lm_eval_names
from quantbench.results import METRICS, ZERO_SHOT_AT_FLOOR, metric_spec
from quantbench.reports.serving_view import NOT_A_SUBMISSION, serving_row

TEMPLATE = Path(__file__).parent / "templates" / "model_card.md.j2"
TASK = "text-classification"
GENERATION_TASK = "text-generation"
#: Language-model quality figures of a generation variant (test_perplexity), for ``model-index``.
LM_METRICS = ("perplexity", "bits_per_byte", "perplexity_delta_pct", "ppl_ratio", "ln_ppl_ratio", "kl_divergence",
              "kl_divergence_median", "kl_divergence_p99", "kl_divergence_max", "delta_p_mean", "delta_p_rms",
              "top1_agreement", "continuation_agreement")
#: Figures that go into ``model-index``; all measured once per variant.
ACCURACY_METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "precision_macro", "recall_macro",
                    "agreement_with_fp32", "accuracy_delta_pts")
#: Shown in the card's text only: the floor a constant predictor reaches is context, not a result.
CONTEXT_METRICS = ("majority_rate",)
FAIRNESS_METRICS = ("dp_difference", "eo_difference", "worst_group_accuracy", "flip_rate",
                    "score_gap_mean", "score_gap_max", "data_dp_difference", "data_eo_difference",
                    "data_worst_group_accuracy")
#: Figures of the counterfactual probe (test_fairness); the ``data_*`` ones come from the dataset.
PROBE_METRICS = frozenset({"dp_difference", "eo_difference", "worst_group_accuracy", "flip_rate",
                           "score_gap_mean", "score_gap_max"})
PROBE_DATASET = "quantbench counterfactual probe"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_BASE_MODEL_KEYS = ("base_model", "model_id", "model_name_or_path", "model_source", "source")


def md(value: Any) -> str:
    """Escape for a Markdown table cell or line: no HTML, no column breaks, one line."""
    if value is None:
        return "—"
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "variant"


def card_filename(summary: VariantSummary) -> str:
    v = summary.variant
    return slug("-".join(x for x in (v.model, v.quant, v.backend, v.device, v.machine) if x)) + ".md"


def _base_model(summary: VariantSummary, suite: dict[str, Any]) -> str | None:
    nested = [e.get("model") for e in (summary.perf_extra, summary.quality_extra) if isinstance(e.get("model"), dict)]
    for extra in (summary.perf_extra, summary.quality_extra, *nested):
        for key in _BASE_MODEL_KEYS:
            if isinstance(extra.get(key), str) and extra[key]:
                return extra[key]
    models = suite.get("models")
    entries = models.values() if isinstance(models, dict) else models if isinstance(models, list) else []
    for entry in entries:
        if isinstance(entry, dict) and entry.get("name") == summary.variant.model:
            for key in _BASE_MODEL_KEYS + ("path",):
                if isinstance(entry.get(key), str):
                    return entry[key]
    return None


def task_of(summary: VariantSummary) -> str:
    return GENERATION_TASK if summary.is_generation else TASK


def eval_results(summary: VariantSummary) -> list[EvalResult]:
    dataset = summary.dataset or "unknown"
    split = summary.quality_extra.get("split") or "test"
    out = []
    names = (LM_METRICS if summary.is_generation else ()) + ACCURACY_METRICS + FAIRNESS_METRICS
    for name in names:
        value = summary.quality.get(name)
        if value is None:
            continue
        on_probe = name in PROBE_METRICS
        out.append(EvalResult(
            task_type=task_of(summary), dataset_type=slug(PROBE_DATASET if on_probe else dataset),
            dataset_name=PROBE_DATASET if on_probe else dataset, dataset_split=None if on_probe else split,
            metric_type=name, metric_name=METRICS[name].description, metric_value=value))
    for name in lm_eval_names(summary.quality):
        if name.endswith("_delta"):
            continue
        _, task, metric = name.split(".", 2)  # lm_eval.<task>.<metric>[.<filter>]: the task is the dataset
        out.append(EvalResult(task_type=task_of(summary), dataset_type=slug(task), dataset_name=task,
                              metric_type=metric, metric_name=metric_spec(name).description,
                              metric_value=summary.quality[name]))
    return out


def _performance_rows(summary: VariantSummary) -> list[list[str]]:
    if summary.is_generation:
        return _generation_rows(summary)
    rows = sorted(summary.rows, key=lambda r: (str(r.test), _n(r.batch_size), _n(r.seq_len)))
    return [[md(r.batch_size), md(r.seq_len), fmt(r.metrics.get("latency_p50_ms")),
             fmt(r.metrics.get("latency_p95_ms")), fmt(r.metrics.get("throughput_samples_per_s")),
             fmt(r.metrics.get("peak_rss_mb")), "—" if r.speedup is None else f"{r.speedup:.2f}×"]
            for r in rows if any(k in r.metrics for k in ("latency_p50_ms", "throughput_samples_per_s"))]


def _generation_rows(summary: VariantSummary) -> list[list[str]]:
    """Batch, prompt / new tokens, TTFT, TPOT, decode tokens/s, peak RSS and decode speed-up."""
    rows = sorted((r for r in summary.rows if r.test == "test_generation"),
                  key=lambda r: (_n(r.batch_size), _n(r.seq_len), _n(r.new_tokens)))
    return [[md(r.batch_size), md(f"{r.seq_len} / {r.new_tokens}"), fmt(r.metrics.get("ttft_p50_ms")),
             fmt(r.metrics.get("tpot_p50_ms")), fmt(r.metrics.get("decode_tokens_per_s")),
             fmt(r.metrics.get("peak_rss_mb")), "—" if r.speedup is None else f"{r.speedup:.2f}×"] for r in rows]


def _efficiency_rows(summary: VariantSummary) -> list[list[str]]:
    """Per cell: achieved GFLOP/s, share of the machine's peak and bandwidth, cost per million."""
    rows = []
    for r in sorted(summary.rows, key=lambda r: (_n(r.batch_size), _n(r.seq_len), _n(r.new_tokens))):
        m = r.metrics
        cost = m.get("cost_per_million_output_tokens", m.get("cost_per_million_inferences"))
        if m.get("achieved_gflops") is None and cost is None:
            continue
        rows.append([md(r.batch_size), fmt(m.get("achieved_gflops")), fmt(m.get("compute_share")),
                     fmt(m.get("bandwidth_share")), fmt(cost)])
    return rows


def _n(value: Any) -> tuple:
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))


def _group_rows(summary: VariantSummary) -> list[list[str]]:
    fairness = summary.quality_extra.get("fairness")
    if not isinstance(fairness, dict):
        return []
    rows = []
    for source, block in [("", fairness)] + [(k, v) for k, v in fairness.items() if isinstance(v, dict)]:
        groups = block.get("by_group") if isinstance(block, dict) else None
        if isinstance(groups, dict):
            for group, m in groups.items():
                if isinstance(m, dict):
                    rows.append([md(source or "—"), md(group), fmt(m.get("accuracy")),
                                 fmt(m.get("selection_rate")), md(m.get("count"))])
    return rows


def card_context(summary: VariantSummary, analysis: Analysis, *, command: str | None) -> dict[str, Any]:
    run, v = analysis.run, summary.variant
    ref = next((s for s in analysis.variants if s.variant == summary.reference), None)
    info = run.machine_info
    qb = info.get("quantbench") or {}
    extra = {**summary.quality_extra, **summary.perf_extra}
    quant_config = extra.get("quant_config")
    accuracy_rows = []
    lm_eval = tuple(lm_eval_names({*summary.quality, *(ref.quality if ref else ())}))
    for name in (LM_METRICS if summary.is_generation else ()) + ACCURACY_METRICS + CONTEXT_METRICS + lm_eval:
        mine = summary.quality.get(name)
        theirs = ref.quality.get(name) if ref else None
        if mine is None and theirs is None:
            continue
        # The difference of two figures; a delta figure's own row carries the paired interval.
        delta = mine - theirs if mine is not None and theirs is not None and "delta" not in name else None
        accuracy_rows.append([md(name), md(figure_text(summary, name)), md(figure_text(ref, name) if ref else "—"),
                              "—" if delta is None else f"{delta:+.4f}"])
    fairness_rows = [[md(name), md(figure_text(summary, name)), md(figure_text(ref, name) if ref else "—")]
                     for name in FAIRNESS_METRICS if name in summary.quality or (ref and name in ref.quality)]
    batch = [[md(b.figure), md(b.batch_size), *(md(t) for t in b.texts().values()), md(b.verdict)]
             for b in batch_rows(summary)]
    floor = summary.quality_extra.get(ZERO_SHOT_AT_FLOOR)
    gpu = qb.get("gpu")
    return {
        "title": md(f"{v.model} · {v.quant} · {v.backend} · {v.device}"),
        "task": task_of(summary),
        "baseline_note": md(extra.get("baseline_note")) if extra.get("baseline_note") else "",
        "model": md(v.model), "quant": md(v.quant), "backend": md(v.backend), "device": md(v.device),
        "machine_label": md(v.machine) if v.machine else "",
        "base_model": md(_base_model(summary, run.suite)),
        "architecture": md(extra.get("architecture") or extra.get("model_type")),
        "param_count": fmt(summary.metric("param_count")) if summary.metric("param_count") else "—",
        "quantized_layers": md(None if summary.metric("quantized_layers") is None
                               else int(summary.metric("quantized_layers"))),
        "quant_config": md(", ".join(f"{k}={val}" for k, val in quant_config.items())
                           if isinstance(quant_config, dict) else quant_config),
        "disk_size_mb": fmt(summary.metric("disk_size_mb")),
        "dataset": md(summary.dataset),
        "n_examples": md(summary.quality_extra.get("n_examples")),
        "is_reference": ref is not None and ref.variant == v,
        "reference": md(ref.variant.label if ref else None),
        "performance_rows": _performance_rows(summary),
        "efficiency_rows": _efficiency_rows(summary),
        "cost_unit": "output tokens" if summary.is_generation else "inferences",
        "speedup": "—" if summary.speedup is None else f"{summary.speedup:.2f}×",
        "serving": {k: md(v) for k, v in serving_row(summary).items()} if summary.serving else None,
        "serving_note": NOT_A_SUBMISSION,
        "accuracy_rows": accuracy_rows,
        "lm_eval_tasks": md(", ".join(sorted({n.split(".")[1] for n in lm_eval}))) if lm_eval else "",
        "lm_eval_scope": md(_lm_eval_scope(summary.quality_extra)),
        "lm_eval_at_floor": [md(f"{name} (majority rate {floor_of(summary.quality_extra, name)[0]:.3f})")
                             for name in floored_names(summary.quality_extra)
                             if floor_of(summary.quality_extra, name)[1]],
        "fairness_rows": fairness_rows,
        "has_intervals": bool(summary.quality_ci or summary.quality_se),
        "quality_scoring": md(summary.quality_scoring) if summary.quality_scoring else "",
        "zero_shot_at_floor": floor is True and summary.is_generation,
        "majority_rate": fmt(summary.quality.get("majority_rate")),
        "batch_rows": batch,
        "group_rows": _group_rows(summary),
        "has_quality": bool(summary.quality),
        "tolerance": analysis.fairness_tolerance,
        "hardware": [
            ("Machine", md(info.get("node"))),
            ("CPU", md(qb.get("cpu_model") or (info.get("cpu") or {}).get("brand_raw"))),
            ("ISA", md((isa.from_machine_info(info) or {}).get("label"))),
            ("RAM", md(f"{qb['ram_gb']} GB" if qb.get("ram_gb") is not None else None)),
            ("GPU", md((gpu.get("name") if isinstance(gpu, dict) else gpu) or "none")),
            ("Torch threads", md(qb.get("torch_threads"))),
            ("System", md(" ".join(str(x) for x in (info.get("system"), info.get("release"), info.get("machine")) if x))),
            ("Python", md(info.get("python_version"))),
        ],
        "versions": [(md(k), md(val)) for k, val in sorted((qb.get("versions") or {}).items())],
        "suite": md(run.suite.get("name")),
        "commit": md((run.commit_info or {}).get("id")),
        "date": md(run.datetime),
        # Inside a fenced block nothing is interpreted; only a fence would break out.
        "command": (command or run.suite.get("command") or "").replace("```", "'''"),
    }


def _lm_eval_scope(extra: dict[str, Any]) -> str:
    """How many documents and shots the lm-eval figures read, from lm-eval's own results JSON."""
    results = extra.get("lm_eval_results")
    if not isinstance(results, dict):
        return ""
    counts = results.get("n-samples") or {}
    shots = results.get("n-shot") or {}
    return "; ".join(f"{task}: {(counts.get(task) or {}).get('effective', '?')} documents, {shots.get(task, '?')}-shot"
                     for task in sorted(counts))


def card_data(summary: VariantSummary, analysis: Analysis) -> ModelCardData:
    v = summary.variant
    base = _base_model(summary, analysis.run.suite)
    return ModelCardData(
        model_name=f"{v.model}-{v.quant}-{v.backend}-{v.device}",
        # Only a Hub repo id is valid here; a local path is mentioned in the body instead.
        base_model=base if base and _HUB_ID.match(base) and not Path(base).exists() else None,
        tags=[v.quant, v.backend, "quantbench"] + (["quantization"] if not v.is_fp32 else []),
        pipeline_tag=task_of(summary),
        eval_results=eval_results(summary) or None,
    )


@functools.lru_cache(maxsize=1)
def _template():
    import jinja2

    return jinja2.Template(TEMPLATE.read_text(encoding="utf-8"))


def render_card(summary: VariantSummary, analysis: Analysis, *, command: str | None = None) -> str:
    """The card's text, as ``ModelCard.from_template(card_data(...), template_path=TEMPLATE, **context)``
    renders it: same steps (``card_data`` as YAML plus its fields plus our context), but the
    template is compiled once; huggingface_hub recompiles it on every call, which was a third
    of the time for a sweep with 150 variants.
    """
    data = card_data(summary, analysis)
    kwargs = {**data.to_dict(), **card_context(summary, analysis, command=command)}
    return _template().render(card_data=data.to_yaml(), **kwargs)


def build_card(summary: VariantSummary, analysis: Analysis, *, command: str | None = None) -> ModelCard:
    return ModelCard(render_card(summary, analysis, command=command))


def write_model_cards(analysis: Analysis, out_dir: Path, *, command: str | None = None) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for summary in analysis.variants:
        name = card_filename(summary)
        stem, n = name[:-3], 2
        while name in written:  # two labels that slug the same way keep separate files
            name, n = f"{stem}-{n}.md", n + 1
        path = out_dir / name
        text = render_card(summary, analysis, command=command)
        ModelCard(text)  # parses the front matter back, as ModelCard.load will: a bad card fails here
        # Written as rendered; card.save() would serialise the same YAML a second time.
        path.write_text(text, encoding="utf-8")
        written[name] = path
    return written

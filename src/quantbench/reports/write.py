"""``write_reports``: every output of ``quantbench report`` for one run, in one directory."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from quantbench.errors import QuantbenchError
from quantbench.reports.export import github_action_benchmark, report_json
from quantbench.reports.html import render_html
from quantbench.reports.model import analyse
from quantbench.reports.model_card import slug, write_model_cards
from quantbench.results import LM_EVAL_RESULTS, Run, load_run


def _write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return path


def write_reports(run_or_path: Run | str | Path, out_dir: str | Path, *, command: str | None = None,
                  model_cards: bool = True, trend_page: str | None = None) -> dict[str, Path]:
    """Write index.html, report.json, github-action-benchmark-{smaller,bigger}.json, model_cards/, and
    lm_eval/<variant>.json (lm-eval's own results JSON of each variant a test_lm_eval record holds).

    Returns ``{name: path}``; model cards appear as ``model_cards/<file>``. The pytest plugin
    calls this at the end of ``pytest bench/ --report-dir DIR``; with ``--history`` it passes
    ``trend_page``, the history's trend page relative to ``out_dir``, which index.html links to.
    """
    run = run_or_path if isinstance(run_or_path, Run) else load_run(run_or_path)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise QuantbenchError(f"{out}: cannot create report directory ({exc.strerror or exc})") from None
    analysis = analyse(run)
    written: dict[str, Path] = {}
    index = out / "index.html"
    index.write_text(render_html(analysis, command=command, trend_page=trend_page), encoding="utf-8")
    written["index.html"] = index
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    written["report.json"] = _write_json(out / "report.json", report_json(analysis, command=command, generated_at=now))
    for direction, entries in github_action_benchmark(analysis).items():
        name = f"github-action-benchmark-{direction}.json"
        written[name] = _write_json(out / name, entries)
    if model_cards:
        for name, path in write_model_cards(analysis, out / "model_cards", command=command).items():
            written[f"model_cards/{name}"] = path
    for record in run.records:
        results = record.extra_info.get(LM_EVAL_RESULTS)
        if isinstance(results, dict):
            name = f"lm_eval/{slug(record.cell_id)}.json"
            (out / "lm_eval").mkdir(exist_ok=True)
            written[name] = _write_json(out / name, results)
    return written

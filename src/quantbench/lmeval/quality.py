"""The sweep's lm-eval pass: the suite's ``quality.lm_eval`` tasks on every generation variant.

Each variant is the pool's own build (the one its other cells measured), wrapped as the
``quantbench`` lm-eval model. Its record holds lm-eval's figures with lm-eval's stderr, each
accuracy's majority floor (lmeval/floor.py), their paired change against the fp32 reference
(the same one every other quality figure uses: PyTorch fp32 for llama.cpp and OpenVINO) with
McNemar's exact test, how requests were batched, and lm-eval's whole results
JSON (``lm_eval_results``), which the report keeps as a file per variant.
"""

from __future__ import annotations

from typing import Any

from quantbench.cells import Cell
from quantbench.lmeval import figures
from quantbench.lmeval.floor import floor_figures
from quantbench.lmeval.runner import run_tasks
from quantbench.results import LM_EVAL_RESULTS


class LmEvalQuality:
    def __init__(self, run, pool):
        self.run, self.pool = run, pool
        self._done: dict[tuple, tuple[dict[str, Any], float]] = {}  # variant key -> (results, seconds)

    @property
    def settings(self):
        return self.run.suite.quality.lm_eval

    def include_paths(self) -> tuple[str, ...]:
        """The shipped task folder when a shipped task runs, then the suite's own folders."""
        from quantbench.lmeval.shipped import SHIPPED_TASKS, task_folder

        shipped = ()
        if set(self.settings.tasks) & set(SHIPPED_TASKS):
            shipped = (str(task_folder(self.run.splits, dataset_source=self.run.suite.dataset.source)),)
        return shipped + tuple(self.settings.include_path)

    def _model(self, cell: Cell):
        from quantbench.lmeval.model import QuantbenchLM
        from quantbench.lmeval.variant import OpenedVariant

        resources = self.run.for_cell(cell, timed=False)
        variant = self.pool.get(cell, resources.source, resources.settings).variant
        return QuantbenchLM(opened=OpenedVariant(cell=cell, variant=variant, tokenizer=resources.tokenizer,
                                                 checkpoint=resources.source.path,
                                                 baseline_note=resources.source.baseline_note))

    def _results(self, cell: Cell) -> tuple[dict[str, Any], float]:
        if cell.variant_key not in self._done:
            settings = self.settings
            self._done[cell.variant_key] = run_tasks(self._model(cell), tasks=settings.tasks,
                                                     include_paths=self.include_paths(), limit=settings.limit,
                                                     num_fewshot=settings.num_fewshot)
        return self._done[cell.variant_key]

    def evaluate(self, cell: Cell) -> dict[str, Any]:
        """``cell``'s record: lm-eval's figures, their change against fp32, and lm-eval's results JSON."""
        from quantbench.quality.reference import reference_cell

        ref_cell = reference_cell(cell)
        reference, _ = self._results(ref_cell)  # first, so building it does not evict the variant mid-way
        results, seconds = self._results(cell)
        samples = results.get("samples", {})
        mine = figures.per_document(samples)
        model_info = results.get("config", {})
        scored = figures.result_figures(results)
        return {"cell_id": cell.id, "dataset": cell.dataset, **scored, **floor_figures(samples, scored),
                **figures.paired_deltas(mine, figures.per_document(reference.get("samples", {}))),
                "quality_scoring": model_info.get("quality_scoring"),
                "lm_eval_reference": ref_cell.variant_id, "lm_eval_tasks": list(self.settings.tasks),
                "lm_eval_limit": self.settings.limit, "lm_eval_num_fewshot": self.settings.num_fewshot,
                "lm_eval_seconds": round(seconds, 3), LM_EVAL_RESULTS: figures.stripped(results)}

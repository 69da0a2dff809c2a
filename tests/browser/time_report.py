"""Time `write_reports` on 1,000 synthetic records: ``python tests/browser/time_report.py [N]``.

Prints one figure per output and the total; the target is <= 5 s for 1,000 records on the
2-core dev machine. Kept out of the unit tests: timings on a shared machine are not asserts.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from quantbench.reports.export import github_action_benchmark, report_json  # noqa: E402
from quantbench.reports.html import render_html  # noqa: E402
from quantbench.reports.model import analyse  # noqa: E402
from quantbench.reports.model_card import write_model_cards  # noqa: E402
from quantbench.reports.write import write_reports  # noqa: E402
from quantbench.results import load_run  # noqa: E402
from tests.run_factory import make_run  # noqa: E402


def synthetic(n: int) -> dict:
    # 6 variants x (6 batch sizes + 1 accuracy record) = 42 records per model.
    data = make_run(models=tuple(f"model{i:02d}" for i in range(n // 42 + 1)), batch_sizes=(1, 2, 4, 8, 16, 32),
                    rounds=20)
    data["benchmarks"] = data["benchmarks"][:n]
    return data


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.json"
        path.write_text(json.dumps(synthetic(n)))
        t0 = time.perf_counter()
        written = write_reports(path, Path(tmp) / "out")
        total = time.perf_counter() - t0
        size = (Path(tmp) / "out" / "index.html").stat().st_size
        # Parts, timed separately (each redone once more, so their sum is not the total).
        run = load_run(path)
        parts = {}
        for name, step in (("load+analyse", lambda: analyse(load_run(path))),
                           ("index.html", lambda: render_html(analysis)),
                           ("report.json", lambda: json.dumps(report_json(analysis), default=str)),
                           ("github-action-benchmark", lambda: github_action_benchmark(analysis)),
                           ("model cards", lambda: write_model_cards(analysis, Path(tmp) / "cards"))):
            t = time.perf_counter()
            result = step()
            parts[name] = time.perf_counter() - t
            if name == "load+analyse":
                analysis = result
    cards = sum(1 for k in written if k.startswith("model_cards/"))
    print(f"{len(run.records)} records, {len(analysis.variants)} variants, {cards} model cards, "
          f"index.html {size / 1e6:.1f} MB")
    for name, seconds in parts.items():
        print(f"  {name:<26}{seconds:6.2f} s")
    print(f"write_reports total: {total:.2f} s (target <= 5 s)")


if __name__ == "__main__":
    main()

"""A serving sweep end to end through pytester: tiny classifier and tiny Llama under MLPerf LoadGen,
served in process (dynamic batcher, static batcher over generate); JSON, logs, report and cards."""

from __future__ import annotations

import json

import pytest

from tests.tiny import tiny_suite, write_suite

pytest.importorskip("mlperf_loadgen")


def serving_suite(model_dir, llama_dir, data_csv, **serving):
    suite = tiny_suite(model_dir, data_csv, quantization=["fp32"], batch_sizes=[1, 2])
    suite["models"].append({"name": "tinylm", "source": "path", "path": str(llama_dir), "task": "text-generation",
                            "max_seq_len": 48})
    suite.update(prompt_lens=[8], new_tokens=[4], recommend_by="capacity")
    suite["serving"] = {"scenarios": ["single_stream", "offline", "server"],
                        "slo": {"latency_p90_ms": 250, "ttft_p90_ms": 400, "tpot_p90_ms": 100},
                        "min_duration_s": 0.3, "max_duration_s": 8, "samples": 16, "max_points": 3,
                        "precision": 0.2, "compare_tokens": 2, "knee_points": 2, "replicates": 2, **serving}
    return suite


def run(pytester, suite, *args):
    path = write_suite(pytester.path / "suite.yaml", suite)
    out = pytester.path / "serving.json"
    result = pytester.runpytest_subprocess("bench/test_serving.py", "--suite", str(path), "--benchmark-json",
                                           str(out), "--report-dir", str(pytester.path / "report"),
                                           "-p", "no:cacheprovider", *args)
    return result, (json.loads(out.read_text()) if out.exists() else None)


def test_a_serving_sweep_records_capacity_points_logs_report_and_cards(pytester, bench_dir, tiny_model, tiny_llama,
                                                                        tiny_data, isolated_cache):
    result, data = run(pytester, serving_suite(tiny_model, tiny_llama, tiny_data))
    result.assert_outcomes(passed=6)
    cells = {b["param"]: b for b in data["benchmarks"]}
    assert sorted(cells) == sorted(f"{m}-toy-fp32-pytorch-cpu-{s}" for m in ("tiny", "tinylm")
                                   for s in ("single_stream", "offline", "server"))
    report = pytester.path / "report"
    for model, task in (("tiny", "text-classification"), ("tinylm", "text-generation")):
        server = cells[f"{model}-toy-fp32-pytorch-cpu-server"]["extra_info"]
        block = server["serving"]
        assert "not an MLPerf result" in block["note"] and block["setting"] == "max_batch"
        assert [s["setting"] for s in block["settings"]] == [1, 2]
        assert server["task"] == task
        assert server.get("capacity_qps", 0) > 0 or server["capacity_message"].startswith("setting 1: no rate meets")
        # The capacity judges the percentile as named; each point's LoadGen verdict, an upper bound of it, says so.
        assert server["slo"] == block["slo"] == ("p90 ≤ 250 ms" if task == "text-classification"
                                                 else "TTFT p90 ≤ 400 ms and TPOT p90 ≤ 100 ms")
        assert "upper bound" in block["point_verdicts"] and "LoadGen early stopping" in block["point_verdicts"]
        assert block["search"]["knee_points"] == 2 and block["search"]["replicates"] == 2
        for setting in block["settings"]:
            assert setting["system"]["batcher"]["max_batch"] == setting["setting"]
            assert setting["offline_bound_from"] == "this run's offline cell"  # the offline cell ran first
            assert len(setting["points"]) <= 3 + 2 * 2 and (setting["points"] or setting["message"])
            if any(not p["meets_slo"] for p in setting["points"]) and setting.get("capacity_qps"):
                # The knee's points ran twice, the second time on a freshly started batcher.
                assert [p["replicate"] for p in setting["points"][-4:]] == [0, 0, 1, 1]
                assert setting["replicates"] == 2
            if setting.get("capacity_qps"):  # what set it: the SLO, or the search's ceiling (every point met it)
                binding = any(not p["meets_slo"] for p in setting["points"])
                assert setting["slo_binding"] is binding and setting["capacity_bound_by"] and setting["capacity_method"]
                if setting.get("capacity_ci95"):
                    low, high = setting["capacity_ci95"]
                    assert low <= setting["capacity_qps"] <= high and binding
            server_points = [p for p in setting["points"] if p["scenario"] == "server"]
            assert len({p["seed"] for p in server_points}) == len(server_points)  # each point its own seeds
            for point in setting["points"]:
                assert point["verdict"] in ("VALID", "INVALID") and point["target_qps"] > 0
                assert point["achieved_qps"] > 0 and "goodput_qps" in point["client"]
                # What the load generator's process took from the 2 cores, beside the figures it measured.
                cpu = point["client"]["cpu"]
                assert cpu["harness_cpu_s"] >= 0 and cpu["harness_is"].endswith("in-process model")
                assert point["verdict"] == "VALID" or point["reasons"]
                assert (report / point["logs"] / "mlperf_log_summary.txt").is_file()
                assert (report / point["logs"] / "mlperf_log_detail.txt").is_file()
                if task == "text-generation":
                    assert {"ttft_ms", "tpot_ms"} <= set(point) and point["client"]["itl_ms"]["gaps"] > 0
                elif point["scenario"] == "server":
                    # What the verdict judged: the share over the bound, with LoadGen's 99 % upper bound.
                    assert point["judged"] == "p90 upper bound (LoadGen early stopping, 99% confidence)"
                    share = point["overlatency_queries"] / point["query_count"]
                    assert point["over_bound_share"] == pytest.approx(share, abs=1e-5)
                    assert point["over_bound_share_upper"] >= share and point["over_bound_allowed"] == 0.1
                    # A VALID point's upper bound is within what p90 allows (LoadGen's own condition).
                    assert point["verdict"] == "INVALID" or point["over_bound_share_upper"] <= 0.1 + 1e-3
        if task == "text-generation":
            tokens = block["served_tokens"]
            assert tokens["prompts"] == 2 and tokens["differ"] + tokens["identical"] == 2
            assert "static batcher" in block["settings"][0]["system"]["generation"]
        offline = cells[f"{model}-toy-fp32-pytorch-cpu-offline"]["extra_info"]
        assert offline["offline_qps"] > 0
        single = cells[f"{model}-toy-fp32-pytorch-cpu-single_stream"]["extra_info"]
        assert single["single_stream_p90_ms"] > 0 and len(single["serving"]["settings"]) == 1
        assert single["reference_s"] and single["reference"]["name"]  # the drift reference, for the gate
    assert data["benchmarks"][0]["params"]["scenario"] == "single_stream"
    html = (report / "index.html").read_text()
    assert '<section id="serving">' in html and 'data-chart="load-0"' in html and 'data-chart="load-1"' in html
    cards = {p.name: p.read_text() for p in (report / "model_cards").glob("*.md")}
    assert all("Serving under load (MLPerf LoadGen)" in text for text in cards.values()) and len(cards) == 2
    assert all("p90 ≤" in text for text in cards.values()) and "p90 ≤ 250 ms" in html
    result.stdout.fnmatch_lines(["*serving cell*not an MLPerf result*", "*tiny-toy-fp32-pytorch-cpu-server*"])


def test_a_scenario_filter_runs_only_those_cells(pytester, bench_dir, tiny_model, tiny_llama, tiny_data,
                                                 isolated_cache):
    suite = serving_suite(tiny_model, tiny_llama, tiny_data)
    result, data = run(pytester, suite, "--scenario", "single_stream", "--model", "tiny")
    result.assert_outcomes(passed=1)
    assert [b["param"] for b in data["benchmarks"]] == ["tiny-toy-fp32-pytorch-cpu-single_stream"]
    # --batch-size narrows a serving cell's settings.
    result, data = run(pytester, suite, "--scenario", "offline", "--model", "tiny", "--batch-size", "2")
    result.assert_outcomes(passed=1)
    assert [s["setting"] for s in data["benchmarks"][0]["extra_info"]["serving"]["settings"]] == [2]
    result, _ = run(pytester, suite, "--scenario", "burst")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*--scenario burst: not in suite 'tiny' (single_stream, offline, server)*"])

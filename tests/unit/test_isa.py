"""The CPU's instruction sets: read, recorded, shown, and used to skip what the CPU cannot run."""

from __future__ import annotations

import copy
import json

import pytest

from quantbench import cells, isa
from quantbench.suite import parse_suite
from tests.run_factory import DEFAULT_MACHINE, make_run

BASE = ["fpu", "sse2", "avx", "avx2", "fma", "f16c", "bmi2"]
ZEN3 = dict(flags=BASE, vendor="AuthenticAMD", family=25, model=1)
ZEN4 = dict(flags=[*BASE, "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16"], vendor="AuthenticAMD",
            family=25, model=0x11)
ZEN5 = dict(flags=ZEN4["flags"], vendor="AuthenticAMD", family=26, model=2)


def describe(kind: dict) -> dict:
    return isa.describe(kind["flags"], vendor=kind["vendor"], family=kind["family"], model=kind["model"])


def test_the_two_machine_kinds_read_as_what_they_are():
    zen3, zen4 = describe(ZEN3), describe(ZEN4)
    assert zen3["label"] == "Zen 3: AVX2 · no AVX-512 · no AMX"
    assert zen4["label"] == "Zen 4: AVX2 · AVX-512 F/VNNI/BF16 · no AMX"
    assert describe(ZEN5)["microarchitecture"] == "Zen 5"
    assert (zen3["bf16_native"], zen3["int8_vnni"]) == (False, False)
    assert (zen4["bf16_native"], zen4["int8_vnni"]) == (True, True)
    assert isa.short_label(zen3) == "Zen 3, AVX2" and isa.short_label(zen4) == "Zen 4, AVX-512 VNNI/BF16"
    unknown = isa.describe(["avx2"], vendor="GenuineIntel", family=6, model=143)
    assert unknown["microarchitecture"] is None and unknown["label"].startswith("family 6 model 143: AVX2")


def test_missing_for_names_what_the_cpu_lacks():
    assert isa.missing_for(isa.BF16_NATIVE, describe(ZEN4)) is None
    reason = isa.missing_for(isa.BF16_NATIVE, describe(ZEN3))
    assert reason == "this CPU (Zen 3: AVX2 · no AVX-512 · no AMX) has none of AVX512_BF16, AMX_BF16"


def test_hidden_flags_make_an_avx512_machine_read_as_avx2_and_say_so(monkeypatch):
    monkeypatch.setenv(isa.HIDE_FLAGS_ENV, "avx512f, avx512_vnni,avx512_bf16")
    hidden = describe(ZEN4)
    assert not hidden["avx512f"] and not hidden["bf16_native"] and hidden["avx2"]
    assert hidden["label"].endswith(f"(hidden by {isa.HIDE_FLAGS_ENV}: avx512_bf16, avx512_vnni, avx512f)")


def test_a_run_file_without_a_recorded_isa_is_read_from_its_cpu_flags():
    info = copy.deepcopy(DEFAULT_MACHINE)
    info["cpu"].update(flags=ZEN3["flags"], vendor_id_raw="AuthenticAMD", family=25, model=1)
    assert isa.from_machine_info(info)["label"] == "Zen 3: AVX2 · no AVX-512 · no AMX"
    info["quantbench"]["isa"] = describe(ZEN4)  # what quantbench recorded wins
    assert isa.from_machine_info(info)["microarchitecture"] == "Zen 4"
    assert isa.from_machine_info({"cpu": {}}) is None


def test_this_machine_is_recorded_in_machine_info():
    from quantbench.hardware.machine import machine_info

    recorded = machine_info()["isa"]
    assert recorded == isa.this_cpu() and recorded["label"]
    assert set(isa.TRACKED) <= set(recorded)


def _suite(quantization, backends, method_options=None):
    return parse_suite({"models": [{"name": "m", "source": "embedded"}], "quantization": quantization,
                        "backends": backends, "method_options": method_options or {}}, where="t.yaml")


@pytest.mark.parametrize("kind", [ZEN3, ZEN4], ids=["zen3", "zen4"])
def test_bf16_is_skipped_before_it_is_built_where_the_cpu_has_no_native_bf16(monkeypatch, kind):
    monkeypatch.setattr(isa, "this_cpu", lambda: describe(kind))
    suite = _suite(["fp32", "bf16", "nf4", "int8wo", "static_int8"], ["pytorch", "openvino"],
                   {"nf4": {"compute_dtype": "bfloat16"}, "int8wo": {"inference_precision": "bf16"}})
    reasons = {(p.cell.quant, p.cell.backend): p.skip_reason for p in cells.expand(suite)}
    bf16 = {("bf16", "pytorch"), ("bf16", "openvino"), ("nf4", "pytorch"), ("int8wo", "openvino")}
    for key, reason in reasons.items():
        if reason and "needs the optional dependency" in reason:
            continue  # a runtime not installed here (the transformers 5 env has no OpenVINO) is skipped for that first
        if key in bf16 and kind is ZEN3:
            assert reason.startswith(f"{key[0]} on {key[1]} computes in bf16, which needs native bf16 on the CPU: "
                                     "this CPU (Zen 3"), reason
        else:
            assert reason is None or "native bf16" not in reason, reason
    assert reasons[("fp32", "pytorch")] is None
    # PyTorch is always installed, so its bf16 cell always reaches the ISA check
    assert (reasons[("bf16", "pytorch")] is not None) == (kind is ZEN3)


def test_compare_titles_and_machine_panels_name_each_machines_isa(tmp_path):
    from quantbench.reports.compare import machine_label, write_compare
    from quantbench.results import parse_run

    runs = []
    for name, kind in (("zen3", ZEN3), ("zen4", ZEN4)):
        run = make_run(seed=1)
        run["machine_info"]["cpu"].update(flags=kind["flags"], vendor_id_raw="AuthenticAMD", family=kind["family"],
                                          model=kind["model"])
        (tmp_path / f"{name}.json").write_text(json.dumps(run))
        runs.append(tmp_path / f"{name}.json")
    assert machine_label(parse_run(json.loads(runs[0].read_text()))).endswith("(Zen 3, AVX2) · 2 threads")
    out = write_compare([str(p) for p in runs], tmp_path / "cmp")
    html = next(p for p in out.values() if str(p).endswith(".html")).read_text()
    assert "Zen 3: AVX2 · no AVX-512 · no AMX" in html and "Zen 4: AVX2 · AVX-512 F/VNNI/BF16 · no AMX" in html


def test_the_gate_says_the_isa_changed_in_one_line():
    from quantbench.gate.machine import machine_differences

    base, cur = copy.deepcopy(DEFAULT_MACHINE), copy.deepcopy(DEFAULT_MACHINE)
    base["quantbench"]["isa"], cur["quantbench"]["isa"] = describe(ZEN4), describe(ZEN3)
    diffs = machine_differences(base, cur)
    assert [d.field for d in diffs] == ["quantbench.isa.label"]

"""The machine fingerprint: one id per machine across runs, reboots and imports; a new id for other hardware."""

from __future__ import annotations

import json

import pytest

from quantbench import isa
from quantbench.history import fingerprint as fp
from tests.unit.history.factory import machine_info


@pytest.fixture(autouse=True)
def _no_flag_overrides(monkeypatch):
    monkeypatch.delenv(isa.HIDE_FLAGS_ENV, raising=False)
    monkeypatch.delenv(isa.SHOW_FLAGS_ENV, raising=False)


def test_the_id_is_16_hex_digits_of_the_canonical_fields():
    print_ = fp.from_machine_info(machine_info())
    assert len(print_.id) == 16 and int(print_.id, 16) >= 0
    import hashlib

    assert print_.id == hashlib.sha256(fp.canonical_json(print_.fields).encode()).hexdigest()[:16]
    assert set(print_.fields) == set(fp.FIELDS) and print_.missing == ()
    assert print_.fields["isa"] == ["avx2", "f16c", "fma"]  # only the tracked flags, sorted
    assert print_.fields["kernel"] == "6.18" and print_.fields["ram_class_gib"] == 32


def test_two_runs_of_one_machine_share_it_across_reboots_and_renames():
    """Another boot: another hostname, another measured clock and bogomips, another kernel build, RAM
    reported a little differently; one machine all the same."""
    first = machine_info(node="runner-1", hz=2445406000, release="6.18.44-fc-v1045", ram_gb=23.5)
    again = machine_info(node="ip-10-0-3-17", hz=2445428000, release="6.18.44-fc-v1272", ram_gb=23.4)
    assert fp.from_machine_info(first).id == fp.from_machine_info(again).id


def test_the_hostname_is_not_part_of_it():
    one, other = machine_info(node="alpha"), machine_info(node="omega")
    assert fp.from_machine_info(one) == fp.from_machine_info(other)
    assert "alpha" not in fp.canonical_json(fp.from_machine_info(one).fields)


@pytest.mark.parametrize("change", [
    {"cpu_model": "AMD EPYC 9B14"},
    {"family": 26, "model": 2},  # Zen 5 where it was Zen 3
    {"flags": ("avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16")},  # an AVX-512 host
    {"physical": 4, "logical": 8},
    {"logical": 4},
    {"ram_gb": 61.8},  # the 64 GiB class
    {"system": "Darwin"},
    {"release": "6.1.0-27-amd64"},  # another kernel line
    {"gpu": "NVIDIA H100 80GB HBM3"},
])
def test_other_hardware_gets_another_id(change):
    assert fp.from_machine_info(machine_info(**change)).id != fp.from_machine_info(machine_info()).id


def test_an_old_run_without_quantbenchs_isa_block_gets_the_id_of_a_new_one():
    """Runs made before quantbench recorded its ISA block still carry py-cpuinfo's flags."""
    old, new = machine_info(isa_block=False), machine_info(isa_block=True)
    assert fp.from_machine_info(old).id == fp.from_machine_info(new).id


def test_without_pycpuinfos_flags_the_isa_block_gives_the_same_flags():
    info = machine_info()
    del info["cpu"]["flags"]
    assert fp.from_machine_info(info).id == fp.from_machine_info(machine_info()).id


def test_an_isa_block_with_hidden_flags_is_not_trusted_for_the_flags():
    """QUANTBENCH_HIDE_CPU_FLAGS changes what the code is told, not the machine."""
    info = machine_info()
    del info["cpu"]["flags"]
    info["quantbench"]["isa"].update(avx2=False, hidden=["avx2"])
    print_ = fp.from_machine_info(info)
    assert print_.fields["isa"] is None and "isa" in print_.missing


def test_missing_fields_are_recorded_and_change_the_id():
    info = machine_info()
    del info["quantbench"]["cpu_cores_physical"], info["quantbench"]["ram_gb"]
    print_ = fp.from_machine_info(info)
    assert print_.missing == ("physical_cores", "ram_class_gib")
    assert print_.id != fp.from_machine_info(machine_info()).id
    assert "not recorded: physical_cores, ram_class_gib" in print_.label
    assert print_.to_json()["missing"] == ["physical_cores", "ram_class_gib"]


def test_a_bare_machine_info_reads_without_error():
    print_ = fp.from_machine_info({})
    assert set(print_.missing) == set(fp.FIELDS)


def test_the_label_reads_as_a_machine():
    label = fp.from_machine_info(machine_info()).label
    assert label == "AMD EPYC · Zen 3, AVX2 · 2 cores / 2 threads · 32 GiB class · Linux 6.18"


@pytest.mark.parametrize(("total", "bucket"), [(23.5, 32), (23.4, 32), (15.6, 16), (16.2, 16), (31.9, 32),
                                                (62.7, 64), (8.0, 8), (0.9, 1), (None, None), (0, None)])
def test_ram_classes_are_powers_of_two(total, bucket):
    assert fp.ram_class(total) == bucket


@pytest.mark.parametrize(("release", "kernel"), [("6.18.44-fc-v1272", "6.18"), ("6.1.0-27-amd64", "6.1"),
                                                  ("23.1.0", "23.1"), ("10", None), ("", None), (None, None)])
def test_the_kernel_is_major_minor(release, kernel):
    assert fp.kernel_version(release) == kernel


def test_this_machine_gets_the_id_a_run_made_here_records():
    """The live reading against the machine_info a sweep writes: pytest-benchmark's (py-cpuinfo) plus
    quantbench's block, made by the same functions the plugin calls."""
    from pytest_benchmark.plugin import pytest_benchmark_generate_machine_info

    from quantbench.hardware.machine import machine_info as quantbench_machine_info

    recorded = pytest_benchmark_generate_machine_info()
    recorded["quantbench"] = quantbench_machine_info()
    live = fp.this_machine()
    assert fp.from_machine_info(json.loads(json.dumps(recorded))) == live
    assert live.fields["logical_cpus"] and live.fields["os"] and live.fields["cpu_model"]


def test_hiding_cpu_flags_does_not_change_this_machines_id(monkeypatch):
    plain = fp.this_machine()
    flags = sorted(isa.cpu_flags())
    if not flags:
        pytest.skip("this CPU lists none of the tracked flags")
    monkeypatch.setenv(isa.HIDE_FLAGS_ENV, ",".join(flags))
    assert not any(isa.this_cpu()[flag] for flag in flags)  # the code is told they are gone...
    assert fp.this_machine().id == plain.id  # ...the machine is the same

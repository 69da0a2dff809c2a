"""`quantbench gate` and `quantbench baseline` through quantbench.cli.main: exit codes and files."""

from __future__ import annotations

import json

import pytest

from quantbench import cli
from quantbench.gate.baseline import ENV_VAR
from tests.run_factory import make_run

SMALL = dict(batch_sizes=(8,), variants=(("fp32", "pytorch"), ("nf4", "pytorch")))


@pytest.fixture(autouse=True)
def gate_commands_only(monkeypatch):
    # Only our subcommands: these tests must not depend on other command modules importing.
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("quantbench.gate.commands",))


@pytest.fixture
def runs(tmp_path):
    def write(name: str, **kw) -> str:
        path = tmp_path / name
        path.write_text(json.dumps(make_run(**SMALL, **kw)), encoding="utf-8")
        return str(path)
    return write


def test_pass_exit_0_and_table(runs, capsys):
    code = cli.main(["gate", runs("base.json", seed=1), runs("cur.json", seed=2)])
    out = capsys.readouterr().out
    assert code == 0
    assert "cell" in out and "p-value" in out and "verdict" in out
    assert out.strip().splitlines()[-1].startswith("quantbench gate: PASS")


def test_regression_exit_1_writes_markdown_and_json(runs, tmp_path, capsys):
    md, js = tmp_path / "gate.md", tmp_path / "gate.json"
    code = cli.main(["gate", runs("base.json", seed=1), runs("cur.json", seed=2, latency_scale={"nf4": 1.4}),
                     "--markdown", str(md), "--json", str(js)])
    out = capsys.readouterr().out
    assert code == 1
    assert "test_latency[minilm-tweets-nf4-pytorch-cpu-bs8-seq64]" in out and "latency_p50_ms" in out
    text = md.read_text()
    assert "| cell | metric |" in text and "|---|" in text
    assert json.loads(js.read_text())["exit_code"] == 1


def test_missing_file_exit_2(runs, tmp_path, capsys):
    code = cli.main(["gate", runs("base.json", seed=1), str(tmp_path / "nope.json")])
    assert code == 2
    assert "nope.json" in capsys.readouterr().err


def test_not_a_run_file_exit_2(runs, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    assert cli.main(["gate", runs("base.json", seed=1), str(bad)]) == 2
    assert "bad.json" in capsys.readouterr().err


def test_malformed_policy_exit_2_names_key_and_allowed_values(runs, tmp_path, capsys):
    policy = tmp_path / "gates.yaml"
    policy.write_text("rules:\n  - metric: latency_p50_ms\n    threshold: 10%\n    mode: relativ\n")
    assert cli.main(["gate", runs("b.json", seed=1), runs("c.json", seed=2), "--policy", str(policy)]) == 2
    err = capsys.readouterr().err
    assert "gates.yaml" in err and "rules[0].mode" in err and "'relativ'" in err and "relative, absolute" in err


def test_wrong_number_of_runs_exit_2(runs, capsys):
    assert cli.main(["gate", runs("b.json", seed=1)]) == 2
    assert "BASELINE.json CURRENT.json" in capsys.readouterr().err


def test_strict_machine_and_allow_missing_flags(runs, capsys):
    import copy
    from tests.run_factory import DEFAULT_MACHINE

    machine = copy.deepcopy(DEFAULT_MACHINE)
    machine["quantbench"]["torch_threads"] = 4
    base, cur = runs("b.json", seed=1), runs("c.json", seed=2, machine=machine)
    assert cli.main(["gate", base, cur]) == 0
    assert "torch_threads: 2 -> 4" in capsys.readouterr().err
    assert cli.main(["gate", base, cur, "--strict-machine"]) == 1


def test_baseline_save_list_and_gate_by_name(runs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "store"))
    base = runs("base.json", seed=1)
    assert cli.main(["baseline", "save", base, "--name", "feature/fast-int8"]) == 0
    assert cli.main(["baseline", "save", base, "--name", "main"]) == 0
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["feature%2Ffast-int8.json", "main.json"]
    capsys.readouterr()
    assert cli.main(["baseline", "list"]) == 0
    listing = capsys.readouterr().out
    assert "feature/fast-int8" in listing and "main" in listing
    assert cli.main(["gate", "--baseline-name", "main", runs("cur.json", seed=2)]) == 0
    slow = runs("slow.json", seed=2, latency_scale={"nf4": 1.4})
    assert cli.main(["gate", "--baseline-name", "feature/fast-int8", slow]) == 1
    capsys.readouterr()
    assert cli.main(["gate", "--baseline-name", "nope", slow]) == 2
    err = capsys.readouterr().err
    assert "'nope'" in err and "feature/fast-int8, main" in err


def test_unknown_baseline_name_lists_known(runs, tmp_path, capsys):
    store = tmp_path / "store"
    assert cli.main(["baseline", "save", runs("b.json", seed=1), "--name", "main", "--dir", str(store)]) == 0
    code = cli.main(["gate", "--baseline-name", "dev", "--baseline-dir", str(store), runs("c.json", seed=2)])
    err = capsys.readouterr().err
    assert code == 2 and "'dev'" in err and "main" in err


def test_baseline_save_rejects_bad_name_and_bad_run(runs, tmp_path, capsys):
    store = str(tmp_path / "store")
    assert cli.main(["baseline", "save", runs("b.json", seed=1), "--name", "../evil", "--dir", store]) == 2
    assert "'../evil'" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    assert cli.main(["baseline", "save", str(bad), "--name", "main", "--dir", store]) == 2
    assert not (tmp_path / "store" / "main.json").exists()

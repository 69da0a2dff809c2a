"""`quantbench sweep`'s bad input: one line naming the bad value, exit 2, without a cluster."""

from __future__ import annotations

import os
import shutil

import pytest

from quantbench.cli import main
from tests.conftest import REPO


def _sweep(capsys, *args):
    code = main(["sweep", *args])
    return code, capsys.readouterr().err.strip().splitlines()


def test_without_ray_installed_it_says_so_in_one_line(capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    code, err = _sweep(capsys, "--ray", "auto")
    assert code == 2 and err == ["quantbench sweep: error: --ray needs Ray: pip install 'quantbench[ray]'"]


def test_an_address_that_does_not_answer_is_one_line(capsys, monkeypatch):
    pytest.importorskip("ray")
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.chdir(REPO)
    code, err = _sweep(capsys, "--ray", f"127.0.0.1:{port}")
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"quantbench sweep: error: --ray 127.0.0.1:{port}: no Ray cluster answers there")
    code, err = _sweep(capsys, "--ray", "nonsense")
    assert code == 2 and err == ["quantbench sweep: error: --ray nonsense: expected auto, HOST:PORT or ray://HOST:PORT"]


@pytest.mark.parametrize(("label", "says"), [
    ("zone", "expected KEY=VALUE"),
    ("bad key=x", "'bad key' is not a valid Ray label key"),
    ("zone=not ok", "'not ok' is not a valid Ray label value"),
    ("ray.io/node-id=x", "the ray.io/ prefix is Ray's own"),
    ("quantbench/device=cuda", "comes from each unit's device"),
])
def test_a_bad_node_label_is_one_line_naming_it(capsys, label, says):
    code, err = _sweep(capsys, "--ray", "auto", "--node-label", label)
    assert code == 2 and len(err) == 1 and repr(label) in err[0] and says in err[0]


def test_options_the_driver_owns_are_refused_after_the_separator(capsys, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.chdir(REPO)
    code, err = _sweep(capsys, "--ray", "auto", "--", "--shard", "1/2")
    assert code == 2 and err == [("quantbench sweep: error: --shard after --: give it to quantbench sweep itself "
                                  "(before --), the nodes get their own")]


_JOB = '{"runtime_env": {"working_dir": "gcs://_ray_pkg_0123456789abcdef.zip"}, "metadata": {}}'


def test_inside_a_ray_job_relative_outputs_are_refused_in_one_line(capsys, monkeypatch):
    """A job's working dir is Ray's temporary copy of the tree: outputs written there would be lost."""
    pytest.importorskip("ray")
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", _JOB)
    code, err = _sweep(capsys, "--ray", "auto", "--benchmark-json", "out.json")
    assert code == 2 and err == [("quantbench sweep: error: --benchmark-json out.json: under ray job submit, give an "
                                  "absolute path on the head (the job's working dir is Ray's temporary copy of "
                                  "the tree)")]


def test_inside_a_ray_job_the_driver_plans_from_a_copy_that_outlives_the_jobs_directory(tmp_path, monkeypatch):
    """Ray 2.60 deleted the job's unpacked tree (the driver's cwd) when the driver connected."""
    pytest.importorskip("ray")
    from quantbench.distributed import driver

    job_dir = tmp_path / "_ray_pkg"
    (job_dir / "bench").mkdir(parents=True)
    (job_dir / "bench" / "test_x.py").write_text("def test_x(): pass\n")
    monkeypatch.chdir(job_dir)
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", _JOB)
    with driver._driver_tree(job_dir) as tree:
        shutil.rmtree(job_dir)  # what Ray did
        assert tree != job_dir and os.getcwd() == str(tree)
        assert (tree / "bench" / "test_x.py").read_text() == "def test_x(): pass\n"
    assert not tree.exists()  # the copy goes with the sweep
    monkeypatch.delenv("RAY_JOB_CONFIG_JSON_ENV_VAR")
    job_dir.mkdir()
    with driver._driver_tree(job_dir) as tree:  # outside a job: the tree itself
        assert tree == job_dir

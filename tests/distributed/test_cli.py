"""`quantbench sweep`'s bad input: one line naming the bad value, exit 2, without a cluster."""

from __future__ import annotations

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

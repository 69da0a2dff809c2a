"""The artifact cache: content keys, integrity checks, corrupted entries rebuilt, CLI."""

from __future__ import annotations

import os
import stat

import pytest

from quantbench import cache
from quantbench.backends.base import BuildSettings, ModelSource
from quantbench.cli import main
from quantbench.models import fingerprint


@pytest.fixture
def source(tiny_model):
    return ModelSource(name="tiny", path=tiny_model, fingerprint=fingerprint(tiny_model))


def test_corrupted_onnx_artifact_is_detected_and_rebuilt(source, isolated_cache):
    pytest.importorskip("optimum.onnxruntime", reason="the onnx extra is not installed")
    from quantbench.backends.onnxruntime import build as ort_backend

    settings = BuildSettings(device="cpu", threads=1)
    first = ort_backend.build_fp32(source, settings)
    assert first.info.cached is False
    assert ort_backend.build_fp32(source, settings).info.cached is True
    onnx_file = next(isolated_cache.glob("onnx/tiny-fp32-*/model.onnx"))
    onnx_file.write_bytes(onnx_file.read_bytes()[:1000])  # truncated
    rebuilt = ort_backend.build_fp32(source, settings)
    assert rebuilt.info.cached is False  # never loaded the truncated file
    assert rebuilt.info.disk_size_bytes == first.info.disk_size_bytes
    entry = onnx_file.parent
    assert cache.corruption(entry) is None


def test_a_cached_onnx_entry_reads_its_op_count_from_the_marker(source, isolated_cache, monkeypatch):
    pytest.importorskip("optimum.onnxruntime", reason="the onnx extra is not installed")
    from quantbench.backends.onnxruntime import build as ort_backend

    settings = BuildSettings(device="cpu", threads=1)
    first = ort_backend.build_dynamic_int8(source, settings)
    entry = next(isolated_cache.glob("onnx/tiny-dynamic_int8-*"))
    recorded = cache.read_meta(entry)["onnx_ops"]["model_quantized.onnx"]
    assert recorded["count"] == first.info.quantized_layers > 0
    assert recorded["histogram"] == first.info.quant_config["onnx_ops"]

    def no_parsing(path):
        raise AssertionError("a cached graph was parsed again to count its ops")

    monkeypatch.setattr(ort_backend, "count_quantized_ops", no_parsing)
    again = ort_backend.build_dynamic_int8(source, settings)
    assert again.info.cached is True
    assert again.info.quantized_layers == first.info.quantized_layers
    assert again.info.quant_config["onnx_ops"] == first.info.quant_config["onnx_ops"]


def test_flipped_byte_with_same_size_is_caught(tmp_path, isolated_cache):
    entry = cache.entry_path("models", "x")
    with cache.building(entry, {"note": "t"}) as scratch:
        (scratch / "weights.safetensors").write_bytes(b"abcdef" * 100)
    assert cache.is_complete(entry)
    data = bytearray((entry / "weights.safetensors").read_bytes())
    data[10] ^= 0xFF
    (entry / "weights.safetensors").write_bytes(bytes(data))
    assert cache.corruption(entry) == "weights.safetensors does not match its stored SHA-256"
    assert not cache.is_complete(entry) and not entry.exists()


def test_a_worker_trusts_what_its_parent_hashed_until_a_file_changes(isolated_cache, monkeypatch):
    monkeypatch.setattr(cache, "_trusted", {})
    entry = cache.entry_path("models", "y")
    with cache.building(entry, {"note": "t"}) as scratch:
        (scratch / "weights.safetensors").write_bytes(b"abcdef" * 100)
    assert cache.is_complete(entry)  # the parent hashes it ...
    verified = cache.verified_entries()
    assert str(entry) in verified

    def no_hashing(path, chunk=0):
        raise AssertionError("a trusted, unchanged entry was hashed again")

    cache.trust(verified)  # ... the worker takes its word
    monkeypatch.setattr(cache, "file_sha256", no_hashing)
    assert cache.is_complete(entry)
    (entry / "weights.safetensors").write_bytes(b"abc")  # truncated after the parent's check
    monkeypatch.undo()
    monkeypatch.setattr(cache, "_trusted", {str(entry): verified[str(entry)]})
    assert not cache.is_complete(entry) and not entry.exists()  # hashed again, found corrupt


def test_failed_build_leaves_no_entry(isolated_cache):
    entry = cache.entry_path("onnx", "broken")
    with pytest.raises(RuntimeError):
        with cache.building(entry, {}) as scratch:
            (scratch / "model.onnx").write_bytes(b"half")
            raise RuntimeError("export crashed")
    assert not entry.exists() and not list(entry.parent.glob(".broken-*"))


def test_cache_root_is_user_only(isolated_cache):
    root = cache.cache_root()
    assert stat.S_IMODE(os.stat(root).st_mode) & 0o077 == 0


def test_cache_cli_lists_and_clears(isolated_cache, capsys):
    with cache.building(cache.entry_path("models", "m1"), {}) as scratch:
        (scratch / "a.safetensors").write_bytes(b"x" * 2048)
    assert main(["cache", "list"]) == 0
    out = capsys.readouterr().out
    assert "models  m1" in out and "ok" in out and "1 entries" in out
    assert main(["cache", "clear"]) == 0
    assert "removed 1 cache entries" in capsys.readouterr().out
    assert cache.entries() == []

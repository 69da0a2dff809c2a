"""scripts/install_llamacpp.sh's locate step: llama-server and its libraries wherever CMake put them.

A real ELF server that links a real shared library, laid out as two CMake builds have laid them out
(the tree's bin/, and vendor/llama.cpp/bin/), with the library in another folder of the tree. The step
must copy both, leave a server the loader can run, and fail with one line naming where it looked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "install_llamacpp.sh"
CC = shutil.which("cc") or shutil.which("gcc")
pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler to build a stand-in llama-server")


def fake_build(tree: Path, server_dir: str, lib_dir: str) -> None:
    (tree / server_dir).mkdir(parents=True)
    (tree / lib_dir).mkdir(parents=True, exist_ok=True)
    src = tree / "src"
    src.mkdir()
    (src / "lib.c").write_text('int llama_answer(void) { return 42; }\n')
    (src / "main.c").write_text('#include <stdio.h>\nint llama_answer(void);\n'
                                'int main(void) { printf("version: %d\\n", llama_answer()); return 0; }\n')
    lib = tree / lib_dir / "libllama.so.0"
    subprocess.run([CC, "-shared", "-fPIC", "-Wl,-soname,libllama.so.0", "-o", str(lib), str(src / "lib.c")], check=True)
    (tree / lib_dir / "libllama.so").symlink_to("libllama.so.0")
    subprocess.run([CC, "-o", str(tree / server_dir / "llama-server"), str(src / "main.c"),
                    f"-L{tree / lib_dir}", "-lllama"], check=True)


def locate(tree: Path, dest: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), "--locate-server", str(tree), str(dest)], capture_output=True,
                          text=True)


@pytest.mark.parametrize("server_dir", ["bin", "vendor/llama.cpp/bin"])
def test_the_server_and_its_libraries_are_found_in_either_layout(tmp_path, server_dir):
    tree, dest = tmp_path / "tree", tmp_path / "server"
    fake_build(tree, server_dir, "vendor/llama.cpp/src")
    done = locate(tree, dest)
    assert done.returncode == 0, done.stderr
    assert f"found at {server_dir}/llama-server" in done.stdout
    assert (dest / "libllama.so.0").is_file() and (dest / "libllama.so").is_symlink()
    # The copy runs on its own libraries, the build tree gone.
    shutil.rmtree(tree)
    ran = subprocess.run([str(dest / "llama-server")], capture_output=True, text=True,
                         env={**os.environ, "LD_LIBRARY_PATH": str(dest)})
    assert ran.stdout.strip() == "version: 42"


def test_no_server_is_one_line_naming_where_it_looked(tmp_path):
    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    done = locate(tree, tmp_path / "server")
    assert done.returncode != 0
    assert done.stderr.strip() == f"llamacpp: no executable llama-server under {tree} (looked in every folder of the build tree)"


def test_a_library_missing_from_the_tree_is_named(tmp_path):
    tree = tmp_path / "tree"
    fake_build(tree, "bin", "lib")
    for lib in (tree / "lib").iterdir():
        lib.unlink()
    done = locate(tree, tmp_path / "server")
    assert done.returncode != 0
    assert "llama-server found at" in done.stderr and "libllama.so.0" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1

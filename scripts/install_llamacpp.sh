#!/usr/bin/env bash
# Install llama-cpp-python 0.3.36 (the llamacpp extra) into a Python environment, compiled from its
# sdist, and llama-server from the same CMake build.
#
# PyPI ships only the sdist, and its default build (GGML_NATIVE) turns on every instruction the
# CPU advertises, AMX included: on VMs that advertise AMX without granting it, every decode dies
# with SIGILL in ggml_backend_amx_mul_mat. So native detection is off and the ISA is chosen here:
# AVX2/FMA/F16C/BMI2 always (the floor: any x86-64 with AVX2), AVX-512 parts only where
# /proc/cpuinfo lists them, AMX never.
#
# One CMake build gives both: the sdist is unpacked and pip builds the wheel from it in a build
# tree kept for the next step; that tree is then configured once more with the server on
# (LLAMA_BUILD_TOOLS/LLAMA_BUILD_SERVER; no curl, no web UI: the sdist has no UI assets and the
# prebuilt ones would be a download) and only the `llama-server` target is built. ggml, llama and
# llama-common are the wheel build's own objects, so the extra compile is the server and mtmd (its
# multimodal library). The server and the shared libraries it runs (byte for byte the ones in the
# wheel, plus llama-common and mtmd) are kept in `llama-server/` beside the wheel.
#
# The wheel and the server are kept in a wheelhouse keyed by version and flags, because pip's own
# wheel cache is keyed by the sdist alone: it would hand back a wheel built with other flags (a
# native AMX one). A second install, in this or a fresh environment, reuses them in seconds.
# The server is installed as <env>/lib/llama-server/ with <env>/bin/llama-server pointing at it.
#
# Usage: scripts/install_llamacpp.sh [PYTHON]   (default .venv/bin/python)
set -euo pipefail

PYTHON="${1:-.venv/bin/python}"
VERSION="0.3.36"

flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
has() { case "$flags" in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

args="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF"
args="$args -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
has avx512f && args="$args -DGGML_AVX512=ON"
# The kernel spells it avx512vbmi; accept the underscored form too.
{ has avx512vbmi || has avx512_vbmi; } && args="$args -DGGML_AVX512_VBMI=ON"
has avx512_vnni && args="$args -DGGML_AVX512_VNNI=ON"
has avx512_bf16 && args="$args -DGGML_AVX512_BF16=ON"
has avx_vnni && args="$args -DGGML_AVX_VNNI=ON"
# What the server step adds to the same build tree (it does not change the libraries' flags).
server_args="-DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_UI=OFF"
server_args="$server_args -DLLAMA_USE_PREBUILT_UI=OFF -DMTMD_VIDEO=OFF"

key=$(printf '%s %s' "$VERSION" "$args" | sha256sum | cut -c1-12)
wheelhouse="${QUANTBENCH_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/quantbench/wheels}/llama-cpp-python-$VERSION-$key"
server_dir="$wheelhouse/llama-server"

build_both() {
  local work="$wheelhouse/build"
  echo "llamacpp: compiling llama-cpp-python $VERSION and llama-server from its sdist (one CMake build)"
  echo "llamacpp: CMAKE_ARGS=$args"
  rm -rf "$work" && mkdir -p "$work"
  "$PYTHON" -m pip download --no-deps --no-binary :all: --no-cache-dir -d "$work" "llama-cpp-python==$VERSION" >/dev/null
  tar -xzf "$work"/llama_cpp_python-"$VERSION".tar.gz -C "$work"
  local started=$SECONDS
  rm -f "$wheelhouse"/llama_cpp_python-*.whl
  # --no-cache-dir: build now, never take a wheel pip cached for other flags.
  CMAKE_ARGS="$args" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$PYTHON" -m pip wheel --no-deps --no-cache-dir --config-settings=build-dir="$work/tree" \
    -w "$wheelhouse" "$work/llama_cpp_python-$VERSION"
  local wheel_s=$(( SECONDS - started ))
  cmake -S "$work/llama_cpp_python-$VERSION" -B "$work/tree" $server_args >/dev/null
  cmake --build "$work/tree" --target llama-server -j "$(nproc)"
  local bin="$work/tree/vendor/llama.cpp/bin"
  rm -rf "$server_dir" && mkdir -p "$server_dir"
  cp -a "$bin"/llama-server "$bin"/lib*.so* "$server_dir"/
  LD_LIBRARY_PATH="$server_dir" "$server_dir/llama-server" --version > "$server_dir/VERSION" 2>&1
  printf '%s\n' "$args" > "$wheelhouse/CMAKE_ARGS"
  printf '%s %s\n' "$args" "$server_args" > "$server_dir/CMAKE_ARGS"
  echo "llamacpp: wheel in ${wheel_s}s, llama-server in $(( SECONDS - started - wheel_s ))s more"
  rm -rf "$work"
}

if ! ls "$wheelhouse"/llama_cpp_python-*.whl >/dev/null 2>&1 || [ ! -x "$server_dir/llama-server" ]; then
  build_both
fi

if "$PYTHON" -c "import llama_cpp" >/dev/null 2>&1; then
  echo "llamacpp: llama_cpp $("$PYTHON" -c 'import llama_cpp; print(llama_cpp.__version__)') already importable in $PYTHON"
else
  # Its own dependencies are small pure-Python ones (numpy, jinja2, diskcache, typing-extensions):
  # `import llama_cpp` needs diskcache, so they are installed (pip keeps those already present).
  "$PYTHON" -m pip install --force-reinstall --no-deps "$wheelhouse"/llama_cpp_python-*.whl
  "$PYTHON" -m pip install "$(ls "$wheelhouse"/llama_cpp_python-*.whl)"
  "$PYTHON" -c "import llama_cpp; print('llamacpp: installed llama_cpp', llama_cpp.__version__)"
fi

# The server beside the environment's Python: <env>/lib/llama-server (binary and its libraries), and
# <env>/bin/llama-server, which runs it on those libraries (exec: the process is the server itself).
env_root="$("$PYTHON" -c 'import sys; print(sys.prefix)')"
rm -rf "$env_root/lib/llama-server"
cp -a "$server_dir" "$env_root/lib/llama-server"
printf '#!/bin/sh\n# llama-server on the libraries of its own build (scripts/install_llamacpp.sh)\nhere="$(dirname "$(readlink -f "$0")")/../lib/llama-server"\nLD_LIBRARY_PATH="$here${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/llama-server" "$@"\n' \
  > "$env_root/bin/llama-server"
chmod +x "$env_root/bin/llama-server"
echo "llamacpp: installed $env_root/bin/llama-server ($(head -1 "$server_dir/VERSION"))"

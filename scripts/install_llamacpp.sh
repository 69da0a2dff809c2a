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
#        scripts/install_llamacpp.sh --locate-server TREE DEST   (the locate step alone)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
build_requirements="$here/llamacpp-build-requirements.txt"
if [ "${1:-}" = "--locate-server" ]; then
  # Only the locate step, for its test: scripts/install_llamacpp.sh --locate-server TREE DEST
  shift
  PYTHON=""
else
  PYTHON="${1:-.venv/bin/python}"
fi
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

# The key covers the pinned build tools too: new pins build anew.
key=$(printf '%s %s %s' "$VERSION" "$args" "$(grep -v '^#' "$build_requirements")" | sha256sum | cut -c1-12)
wheelhouse="${QUANTBENCH_WHEELHOUSE:-${QUANTBENCH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/quantbench}/wheels}/llama-cpp-python-$VERSION-$key"
server_dir="$wheelhouse/llama-server"

# The build environment: the pinned backend, CMake and Ninja of llamacpp-build-requirements.txt, in a
# venv of the same interpreter (so the wheel's tags match the target environment's Python).
make_build_env() {
  local env="$1"
  "$PYTHON" -m venv "$env"
  "$env/bin/python" -m pip install -q --disable-pip-version-check -r "$build_requirements"
  echo "llamacpp: build tools: $("$env/bin/cmake" --version | head -1), scikit-build-core $("$env/bin/python" -c 'import scikit_build_core; print(scikit_build_core.__version__)'), ninja $("$env/bin/ninja" --version)"
}

# locate_server TREE DEST: find llama-server and the shared libraries it loads wherever the CMake build
# put them (llama.cpp's CMakeLists sends them to ${CMAKE_BINARY_DIR}/bin, a vendored build elsewhere),
# copy them flat into DEST and check that the loader resolves every library from there.
locate_server() {
  local tree="$1" dest="$2" server lib name missing
  server=$(find "$tree" -type f -name llama-server -perm -u+x 2>/dev/null | head -n 1)
  if [ -z "$server" ]; then
    echo "llamacpp: no executable llama-server under $tree (looked in every folder of the build tree)" >&2
    return 1
  fi
  rm -rf "$dest" && mkdir -p "$dest"
  cp -a "$server" "$dest"/
  # The server's own folder first, so a library built twice is taken from beside the server.
  while IFS= read -r lib; do
    name=$(basename "$lib")
    [ -e "$dest/$name" ] || [ -L "$dest/$name" ] || cp -a "$lib" "$dest/$name"
  done < <({ find "$(dirname "$server")" -maxdepth 1 -name 'lib*.so*'; find "$tree" -name 'lib*.so*' ! -path "$dest/*"; } 2>/dev/null)
  missing=$(LD_LIBRARY_PATH="$dest" ldd "$dest/llama-server" 2>&1 | awk '/not found/ {print $1}' | tr '\n' ' ')
  if [ -n "$missing" ]; then
    echo "llamacpp: llama-server found at $server, but these libraries are nowhere under $tree: $missing" >&2
    return 1
  fi
  echo "llamacpp: llama-server found at ${server#"$tree"/} in the build tree, with $(find "$dest" -name 'lib*.so*' | wc -l) library files"
}

build_both() {
  local work="$wheelhouse/build"
  echo "llamacpp: compiling llama-cpp-python $VERSION and llama-server from its sdist (one CMake build)"
  echo "llamacpp: CMAKE_ARGS=$args"
  rm -rf "$work" && mkdir -p "$work"
  make_build_env "$work/env"
  "$PYTHON" -m pip download --no-deps --no-binary :all: --no-cache-dir -d "$work" "llama-cpp-python==$VERSION" >/dev/null
  tar -xzf "$work"/llama_cpp_python-"$VERSION".tar.gz -C "$work"
  local started=$SECONDS
  rm -f "$wheelhouse"/llama_cpp_python-*.whl
  # --no-cache-dir: build now, never take a wheel pip cached for other flags. The build env's bin comes
  # first on PATH, so scikit-build-core and the second configure both find the pinned CMake and Ninja.
  PATH="$work/env/bin:$PATH" CMAKE_ARGS="$args" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$work/env/bin/python" -m pip wheel --no-deps --no-build-isolation --no-cache-dir \
    --config-settings=build-dir="$work/tree" -w "$wheelhouse" "$work/llama_cpp_python-$VERSION"
  local wheel_s=$(( SECONDS - started ))
  PATH="$work/env/bin:$PATH" cmake -S "$work/llama_cpp_python-$VERSION" -B "$work/tree" $server_args >/dev/null
  PATH="$work/env/bin:$PATH" cmake --build "$work/tree" --target llama-server -j "$(nproc)"
  locate_server "$work/tree" "$server_dir"
  LD_LIBRARY_PATH="$server_dir" "$server_dir/llama-server" --version > "$server_dir/VERSION" 2>&1
  printf '%s\n' "$args" > "$wheelhouse/CMAKE_ARGS"
  printf '%s %s\n' "$args" "$server_args" > "$server_dir/CMAKE_ARGS"
  echo "llamacpp: wheel in ${wheel_s}s, llama-server in $(( SECONDS - started - wheel_s ))s more"
  rm -rf "$work"
}

if [ -z "$PYTHON" ]; then
  locate_server "$@"
  exit
fi

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

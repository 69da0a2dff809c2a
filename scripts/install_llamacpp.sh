#!/usr/bin/env bash
# Install llama-cpp-python 0.3.36 (the llamacpp extra) into a Python environment, compiled from its sdist.
#
# PyPI ships only the sdist, and its default build (GGML_NATIVE) turns on every instruction the
# CPU advertises, AMX included: on VMs that advertise AMX without granting it, every decode dies
# with SIGILL in ggml_backend_amx_mul_mat. So native detection is off and the ISA is chosen here:
# AVX2/FMA/F16C/BMI2 always (the floor: any x86-64 with AVX2), AVX-512 parts only where
# /proc/cpuinfo lists them, AMX never.
#
# The wheel is kept in a wheelhouse keyed by version and flags, because pip's own wheel cache is
# keyed by the sdist alone: it would hand back a wheel built with other flags (a native AMX one).
# A second install, in this or a fresh environment, reuses it in seconds.
#
# Usage: scripts/install_llamacpp.sh [PYTHON]   (default .venv/bin/python)
set -euo pipefail

PYTHON="${1:-.venv/bin/python}"
VERSION="0.3.36"

if "$PYTHON" -c "import llama_cpp" >/dev/null 2>&1; then
  echo "llamacpp: llama_cpp $("$PYTHON" -c 'import llama_cpp; print(llama_cpp.__version__)') already importable in $PYTHON; nothing to do"
  exit 0
fi

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

key=$(printf '%s %s' "$VERSION" "$args" | sha256sum | cut -c1-12)
wheelhouse="${QUANTBENCH_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/quantbench/wheels}/llama-cpp-python-$VERSION-$key"

if ! ls "$wheelhouse"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "llamacpp: compiling llama-cpp-python $VERSION from its sdist (about 8 minutes on 2 cores)"
  echo "llamacpp: CMAKE_ARGS=$args"
  mkdir -p "$wheelhouse"
  # --no-cache-dir: build now, never take a wheel pip cached for other flags.
  CMAKE_ARGS="$args" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$PYTHON" -m pip wheel --no-deps --no-cache-dir --no-binary llama-cpp-python \
    -w "$wheelhouse" "llama-cpp-python==$VERSION"
  printf '%s\n' "$args" > "$wheelhouse/CMAKE_ARGS"
fi

# Its own dependencies are small pure-Python ones (numpy, jinja2, diskcache, typing-extensions):
# `import llama_cpp` needs diskcache, so they are installed (pip keeps those already present).
"$PYTHON" -m pip install --force-reinstall --no-deps "$wheelhouse"/llama_cpp_python-*.whl
"$PYTHON" -m pip install "$(ls "$wheelhouse"/llama_cpp_python-*.whl)"
"$PYTHON" -c "import llama_cpp; print('llamacpp: installed llama_cpp', llama_cpp.__version__)"

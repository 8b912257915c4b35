#!/usr/bin/env bash
# Create (or verify) the project's virtual environment at .venv with the pinned
# OpenMMLab stack, install nk_train in editable mode and link the shared data.
# Idempotent: a second run with everything in place only checks a stamp (seconds).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${NK_VENV:-$ROOT/.venv}"
PY_WANT="${NK_PYTHON:-python3.11}"
MMCV_VERSION="2.1.0"
XTCOCO_VERSION="1.14.3"

die() { echo "setup_env: ERROR: $*" >&2; exit 1; }
log() { echo "setup_env: $*"; }

# --- data link -------------------------------------------------------------------------
# Configs read data/syrip/... and data/coco_mini/...; point data/ at ../shared/data.
link_data() {
  local shared="${NK_DATA_ROOT:-$ROOT/../shared/data}"
  if [ -e "$ROOT/data" ] && [ ! -L "$ROOT/data" ]; then
    log "data/ exists and is not a link; leaving it as it is"
    return
  fi
  if [ ! -d "$shared/syrip" ]; then
    die "SyRIP sample not found at $shared/syrip. Put the shared data beside the repo (../shared/data) or set NK_DATA_ROOT=/path/to/data."
  fi
  ln -sfn "$(cd "$shared" && pwd)" "$ROOT/data"
}

# --- mmcv with ops ------------------------------------------------------------------------
# mmpose.models imports mmcv.ops, so mmcv must be built with its C++ ops. mmcv 2.1.0's
# setup.py asks for C++14/17 and imports pkg_resources; torch 2.14 headers need C++20 and torch
# wants setuptools >= 77. So: patch the sdist to C++20, build with an old setuptools, put
# the pinned setuptools back, and keep the wheel in a cache keyed by mmcv + torch versions
# (first build 11-35 min on 2 cores, then seconds).
build_mmcv() {
  local torch_version cache wheel src
  torch_version="$("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
  cache="${NK_WHEEL_CACHE:-$HOME/.cache/nk_sapiens/wheels}/mmcv-$MMCV_VERSION-torch-$torch_version"
  wheel="$(ls "$cache"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)"
  if [ -z "$wheel" ]; then
    log "building mmcv==$MMCV_VERSION with ops for torch $torch_version (first time: 11-35 min on 2 cores)"
    src="$(mktemp -d)"
    "${PIP[@]}" download -q --no-deps --no-binary :all: "mmcv==$MMCV_VERSION" -d "$src"
    tar -xzf "$src/mmcv-$MMCV_VERSION.tar.gz" -C "$src"
    sed -i 's/-std=c++1[47]/-std=c++20/g' "$src/mmcv-$MMCV_VERSION/setup.py"
    "${PIP[@]}" install -q "setuptools<70"
    mkdir -p "$cache"
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-2}" "${PIP[@]}" wheel -q --no-build-isolation --no-deps \
      "$src/mmcv-$MMCV_VERSION" -w "$cache"
    "${PIP[@]}" install -q -r requirements/runtime.txt  # restores the pinned setuptools
    rm -rf "$src"
    wheel="$(ls "$cache"/mmcv-"$MMCV_VERSION"-*.whl | head -n 1)"
  fi
  "${PIP[@]}" install -q --no-deps --force-reinstall "$wheel"
}

# --- Sapiens checkout extras ------------------------------------------------------------------
# Running the configs through a Sapiens checkout (tests/sapiens) puts its forks first on
# PYTHONPATH; they import pandas and an old yapf. Those go into a folder of their own, never
# into .venv, so the stock stack is unchanged.
SAPIENS_EXTRAS="$VENV/sapiens_extras"
install_sapiens_extras() {
  if PYTHONPATH="$SAPIENS_EXTRAS" "$VENV/bin/python" -c "import pandas, yapf, tomli, ftfy, regex, prettytable" >/dev/null 2>&1; then
    return
  fi
  log "installing the Sapiens checkout extras into $SAPIENS_EXTRAS"
  rm -rf "$SAPIENS_EXTRAS"
  "${PIP[@]}" install -q --no-deps --target "$SAPIENS_EXTRAS" -r requirements/sapiens_extras.txt
}

# --- stamp: hash of everything that decides the environment ------------------------------
stamp_value() {
  cat "$ROOT/tools/setup_env.sh" "$ROOT/requirements/"*.txt "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1
}
STAMP="$VENV/.nk_setup_stamp"

link_data
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(stamp_value)" ] \
   && PYTHONPATH="$VENV/sapiens_extras" "$VENV/bin/python" -c "import nk_train, mmcv.ops, pandas, yapf, ftfy" \
      >/dev/null 2>&1; then
  log "environment up to date ($VENV)"
  exit 0
fi

command -v "$PY_WANT" >/dev/null 2>&1 || die "$PY_WANT not found. Install Python 3.11 (zarr 3.1 / numcodecs 0.16 pins assume 3.11) or set NK_PYTHON."
command -v cc >/dev/null 2>&1 || die "no C compiler (cc) found: mmcv ops and xtcocotools are built from source. Install gcc/g++ (e.g. apt-get install build-essential)."

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PY_WANT" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade "pip<25" wheel ninja psutil cython

log "installing pinned runtime requirements"
"${PIP[@]}" install -q -r requirements/runtime.txt

if ! "$VENV/bin/python" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" >/dev/null 2>&1; then
  build_mmcv
fi

if ! "$VENV/bin/python" -c "import xtcocotools.coco" >/dev/null 2>&1; then
  # The PyPI wheel is built against numpy 1.x; build from source against our numpy 2.
  log "building xtcocotools==$XTCOCO_VERSION from source"
  "${PIP[@]}" install -q --no-build-isolation --no-binary xtcocotools --no-deps "xtcocotools==$XTCOCO_VERSION"
fi

log "installing OpenMMLab packages (--no-deps)"
"${PIP[@]}" install -q --no-deps -r requirements/openmmlab.txt

install_sapiens_extras

log "installing nk_train (editable)"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"

"$VENV/bin/python" -c "import nk_train, mmpose.models, mmpretrain.models, zarr, dask.distributed" \
  || die "import check failed after install; see the pip output above"
stamp_value > "$STAMP"
log "environment ready ($VENV)"

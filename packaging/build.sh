#!/usr/bin/env bash
# Build the one-folder bundle: dist/imgsearch/imgsearch-gui (the app) and dist/imgsearch/imgsearch
# (the command line), with Python, Qt, torch and the offline default weights inside.
#
#   packaging/build.sh              uses .venv (created and filled if missing)
#   PYTHON=/path/to/python packaging/build.sh
#
# The bundle carries the torch that is installed: PyPI's torch for Linux is a CUDA build
# (bundle ~4.3 GB; uses an NVIDIA GPU when there is one), the CPU build from
# https://download.pytorch.org/whl/cpu gives a bundle of about 1 GB. PyInstaller does not
# cross-compile: build on each OS (and the oldest glibc) you ship to.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
if [ ! -x "$PYTHON" ]; then
    python3 -m venv .venv
    PYTHON=.venv/bin/python
fi
"$PYTHON" -m pip install --quiet -e '.[packaging]'
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/imgsearch.spec
du -sh dist/imgsearch
echo "built: dist/imgsearch/imgsearch-gui and dist/imgsearch/imgsearch"

#!/usr/bin/env bash
# Fetch the wheels a lent GPU machine lacks for scripts/train_gpu.sh into ./.whl (git-ignored),
# then add up what a run carries there: the working tree that travels (tracked and untracked,
# not ignored, files), the pack, the wheels, and FROM when it lies outside the tree. The machine
# takes 64 MiB at most; this exits 1 when the total is over.
#
#   scripts/carry_wheels.sh build/pack.npz
#
# Training from a pack imports torch, numpy, diffusers, safetensors, click, tqdm, pyyaml and
# Pillow (scipy through diffusers). The machine's image holds all of them but diffusers, and
# diffusers' own import-time needs (huggingface-hub >= 1.32, requests, filelock, regex, Pillow;
# importlib-metadata only before Python 3.8) are there too, so diffusers alone is fetched, at
# the version this checkout's environment runs (pure Python, one wheel for every platform).
set -euo pipefail
PYTHON=${PYTHON:-.venv/bin/python}
WHEELS=${WHEELS:-.whl}
PACK=${1:-${PACK:-}}
FROM=${FROM:-}
LIMIT=$((64 * 1024 * 1024))

version=$("$PYTHON" -c "import importlib.metadata as m; print(m.version('diffusers'))")
mkdir -p "$WHEELS"
rm -f "$WHEELS"/diffusers-*.whl
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: -d "$WHEELS" "diffusers==$version"

bytes() {  # total size in bytes of the files named (NUL-separated) on stdin
    xargs -0 -r stat -c %s -- 2>/dev/null | awk '{s += $1} END {print s + 0}'
}
tree=$(git ls-files -z --cached --others --exclude-standard | bytes)
wheels=$(find "$WHEELS" -type f -print0 | bytes)
pack=0
if [[ -n "$PACK" ]]; then
    [[ -f "$PACK" ]] || { echo "no pack at $PACK: make one with geochange train pack" >&2; exit 2; }
    git check-ignore -q "$PACK" || echo "warning: $PACK is not git-ignored, so it travels twice" >&2
    pack=$(printf '%s\0' "$PACK" | bytes)
fi
model=0
if [[ -n "$FROM" && -z $(git ls-files -- "$FROM") ]]; then
    model=$(find "$FROM" -type f -print0 | bytes)
fi
total=$((tree + pack + wheels + model))
mib() { awk -v b="$1" 'BEGIN {printf "%6.1f MiB", b / 1048576}'; }
echo "working tree $(mib "$tree") (code, docs and the shipped model)"
echo "pack         $(mib "$pack") ${PACK:-(none given)}"
echo "wheels       $(mib "$wheels") $WHEELS: $(cd "$WHEELS" && ls)"
if (( model )); then echo "FROM model   $(mib "$model") $FROM"; fi
echo "total        $(mib "$total") of $(mib "$LIMIT")"
if (( total > LIMIT )); then
    echo "over the limit: pack fewer --crops, or drop untracked files" >&2
    exit 1
fi

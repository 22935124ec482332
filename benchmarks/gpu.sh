#!/usr/bin/env bash
# GPU throughput of `geochange synth` (issue 7, item 5): benchmarks/sampler.py on CUDA for the
# `cpu` and `paper` presets, DDIM 50 steps and DPM-Solver++ 20 steps, one table per solver.
#
# Run from the repository root of a CUDA machine that has the project's venv:
#     OUT=/some/folder benchmarks/gpu.sh      # writes $OUT/benchmarks.md
#     benchmarks/gpu.sh                       # prints the tables instead
# Knobs: PYTHON (default .venv/bin/python, else python3), SIZE (region edge, default 1024),
#        BATCH (tile windows per model call, default 16), TILE (tile edge, default 256).
#
# A machine without the project's dependencies (the lent GPU machines lack diffusers, rasterio,
# geopandas, pyogrio, shapely, pyproj, rioxarray) can take them as wheels in ./.whl: they are
# installed into /tmp/site first. The repository root goes on PYTHONPATH, so no install is needed.
#
# fp32 and bf16 autocast (synth --precision), DPM-Solver++ also with torch.compile (synth
# --compile).
set -euo pipefail

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if [[ -d .whl ]]; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
SIZE=${SIZE:-1024}
BATCH=${BATCH:-16}
TILE=${TILE:-256}

"$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA GPU visible to torch")'

report() {
    echo "# GPU sampler benchmark"
    echo
    echo "Date: $(date -u +%Y-%m-%dT%H:%MZ). GPU: $(nvidia-smi --query-gpu=name,memory.total \
        --format=csv,noheader 2>/dev/null || echo unknown). With torch.compile, wall s includes" \
        "compiling the UNet (paid once per run)."
    for run in "ddim 50 fp32 -" "dpm 20 fp32 -" "ddim 50 bf16 -" "dpm 20 bf16 -" \
        "dpm 20 fp32 --compile" "dpm 20 bf16 --compile"; do
        set -- $run
        compile=; [[ $4 == --compile ]] && compile=yes
        echo
        echo "## $1, $2 steps, $3${compile:+, torch.compile}"
        echo
        echo '```'
        echo "$PYTHON benchmarks/sampler.py --presets cpu paper --device cuda --sampler $1" \
            "--steps $2 --precision $3 --size $SIZE --tile-size $TILE --batch-size $BATCH" \
            "${compile:+--compile}"
        echo '```'
        echo
        "$PYTHON" benchmarks/sampler.py --presets cpu paper --device cuda --sampler "$1" \
            --steps "$2" --precision "$3" --size "$SIZE" --tile-size "$TILE" \
            --batch-size "$BATCH" ${compile:+--compile}
    done
}

if [[ -n "${OUT:-}" ]]; then
    mkdir -p "$OUT"
    report | tee "$OUT/benchmarks.md"
else
    report
fi

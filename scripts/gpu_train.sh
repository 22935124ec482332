#!/usr/bin/env bash
# Train the `cpu` preset on a GPU within a time budget: the autoencoder, then the diffusion model
# on it. Each phase runs until its budget, keeping checkpoints; its latest checkpoint is then
# finished into a model folder (`--resume` up to that step saves the EMA weights). The final
# model is packed into $OUT in parts of at most 15 MB, with both loss logs and previews.
#
#   DATA=path/to/openearthmap OUT=/some/folder scripts/gpu_train.sh
# Knobs: AE_SECONDS (default 130), LDM_SECONDS (280), BATCH (32), EVERY (checkpoint every 250
#        steps), CROP (256 px), DEVICE (cuda), PRESET (cpu),
#        FROM (an existing model folder to continue from instead of training a new autoencoder).
# A machine without the project's dependencies takes them as wheels in ./.whl (WHEELS).
set -uo pipefail
DATA=${DATA:?set DATA to a folder of image + mask tiles}
OUT=${OUT:?set OUT to the folder for the packed model}
AE_SECONDS=${AE_SECONDS:-130}
LDM_SECONDS=${LDM_SECONDS:-280}
BATCH=${BATCH:-32}
EVERY=${EVERY:-250}
CROP=${CROP:-256}
DEVICE=${DEVICE:-cuda}
PRESET=${PRESET:-cpu}
PYTHON=${PYTHON:-python3}
WORK=${WORK:-/tmp/geochange-train}

WHEELS=${WHEELS:-.whl}
if [[ -d "$WHEELS" ]]; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$WHEELS"/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
rm -rf "$WORK" && mkdir -p "$WORK" "$OUT"

train() {  # the `geochange train` group without the rest of the CLI (no GIS stack needed)
    "$PYTHON" -c 'import sys; from geochange.cli.train import train; train(sys.argv[1:])' "$@"
}

phase() {  # phase PART SECONDS OUTPUT [options...]: train until the budget, then finish
    local part=$1 seconds=$2 output=$3
    shift 3
    timeout "$seconds" bash -c "$(declare -f train); PYTHON=$PYTHON train \"\$@\"" _ \
        "$part" "$DATA" --device "$DEVICE" --batch-size "$BATCH" --crop "$CROP" --steps 1000000 \
        --checkpoint-every "$EVERY" -q -o "$output" "$@"
    local last
    last=$(ls -d "$output"/checkpoint-* 2>/dev/null | sed 's/.*checkpoint-//' | sort -n | tail -1)
    [[ -n "$last" ]] || { echo "no checkpoint in $output"; return 1; }
    train "$part" "$DATA" --device "$DEVICE" --batch-size "$BATCH" --crop "$CROP" --steps "$last" --resume \
        -q -o "$output" "$@" || return 1
    echo "$part: $last steps in ${seconds}s budget"
}

latest_preview() {  # latest_preview FOLDER TARGET: the newest checkpoint preview, if any
    local step
    for step in $(ls -d "$1"/checkpoint-* | sed 's/.*checkpoint-//' | sort -rn); do
        [[ -f "$1/checkpoint-$step/preview.png" ]] && cp "$1/checkpoint-$step/preview.png" "$2" \
            && return
    done
}

if [[ -n "${FROM:-}" ]]; then
    AE=$FROM
else
    AE=$WORK/autoencoder
    phase autoencoder "$AE_SECONDS" "$AE" --preset "$PRESET" || exit 1
    cp "$AE/losses.csv" "$OUT/autoencoder_losses.csv"
    latest_preview "$AE" "$OUT/autoencoder_preview.png"
fi
phase diffusion "$LDM_SECONDS" "$WORK/model" --model "$AE" --cache-latents || exit 1
cp "$WORK/model/losses.csv" "$OUT/diffusion_losses.csv"
latest_preview "$WORK/model" "$OUT/diffusion_preview.png"
rm -rf "$WORK"/model/checkpoint-* "$WORK"/model/losses.csv
tar -C "$WORK" -czf - model | split -b 15m - "$OUT/model.tgz.part-"
ls -la "$OUT"

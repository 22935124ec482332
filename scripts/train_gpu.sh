#!/usr/bin/env bash
# Train the default model further within a time budget (made for a lent GPU; DEVICE=cpu works
# too). Starting from the shipped weights (FROM), it refits the decoder (latents unchanged, so
# the diffusion model stays valid), then trains the diffusion model on, each phase until its
# budget with checkpoints; the latest checkpoint is finished into a model folder (`--resume` up
# to that step saves the EMA weights). The new model goes to $OUT/model (PACK=1: as parts of at
# most 15 MB, model.tgz.part-*), with loss logs, previews and, when QUALITY=1, the quality report.
#
#   DATA="path/to/openearthmap path/to/dubai" OUT=/some/folder scripts/train_gpu.sh
# Knobs: FROM (model folder to continue; default the shipped model; empty: new PRESET model),
#        AE_SECONDS (new autoencoder, only without FROM; 130), DECODER_SECONDS (60),
#        LDM_SECONDS (360), BATCH (32), EVERY (checkpoint every 250 steps), CROP (256 px),
#        DEVICE (cuda), PRESET (cpu), PACK (1), QUALITY (1), WORK (/tmp/geochange-train),
#        LDM_ARGS (more options for `train diffusion`, e.g. "--lr 2e-4 --normalize-latents"),
#        EVAL_ARGS (more options for `geochange evaluate`, e.g. "--segmenter FILE").
# A machine without the project's dependencies takes them as wheels in ./.whl (WHEELS).
set -uo pipefail
DATA=${DATA:?set DATA to one or more folders of image + mask tiles}
OUT=${OUT:?set OUT to the folder for the new model}
FROM=${FROM-geochange/models/default}
AE_SECONDS=${AE_SECONDS:-130}
DECODER_SECONDS=${DECODER_SECONDS:-60}
LDM_SECONDS=${LDM_SECONDS:-360}
BATCH=${BATCH:-32}
EVERY=${EVERY:-250}
CROP=${CROP:-256}
DEVICE=${DEVICE:-cuda}
PRESET=${PRESET:-cpu}
PACK=${PACK:-1}
QUALITY=${QUALITY:-1}
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
read -r -a DATA_DIRS <<< "$DATA"

geochange() {  # the CLI from this checkout
    "$PYTHON" -m geochange.cli "$@"
}

phase() {  # phase PART SECONDS OUTPUT [options...]: train until the budget, then finish
    local part=$1 seconds=$2 output=$3
    shift 3
    local common=(train "$part" "${DATA_DIRS[@]}" --device "$DEVICE" --batch-size "$BATCH"
        --crop "$CROP" --checkpoint-every "$EVERY" -q -o "$output" "$@")
    timeout "$seconds" "$PYTHON" -m geochange.cli "${common[@]}" --steps 1000000
    local last
    last=$(ls -d "$output"/checkpoint-* 2>/dev/null | sed 's/.*checkpoint-//' | sort -n | tail -1)
    [[ -n "$last" ]] || { echo "no checkpoint in $output"; return 1; }
    geochange "${common[@]}" --steps "$last" --resume || return 1
    cp "$output/losses.csv" "$OUT/${part}_losses.csv"
    cp "$output/checkpoint-$last/preview.png" "$OUT/${part}_preview.png" 2>/dev/null
    rm -rf "$output"/checkpoint-* "$output/losses.csv"
    echo "$part: $last steps in ${seconds}s budget"
}

if [[ -n "$FROM" ]]; then
    BASE=$FROM
    if (( DECODER_SECONDS > 0 )); then
        phase autoencoder "$DECODER_SECONDS" "$WORK/decoder" --model "$BASE" --decoder-only || exit 1
        BASE=$WORK/decoder
    fi
else
    phase autoencoder "$AE_SECONDS" "$WORK/autoencoder" --preset "$PRESET" || exit 1
    BASE=$WORK/autoencoder
fi
read -r -a LDM_EXTRA <<< "${LDM_ARGS:-}"
phase diffusion "$LDM_SECONDS" "$WORK/model" --model "$BASE" --cache-latents "${LDM_EXTRA[@]}" \
    || exit 1

if [[ "$QUALITY" == 1 ]]; then
    read -r -a EVAL_EXTRA <<< "${EVAL_ARGS:-}"
    geochange evaluate "$WORK/model" "${DATA_DIRS[@]}" --device "$DEVICE" -o "$OUT/quality" \
        "${EVAL_EXTRA[@]}" || echo "evaluation failed; the model is kept"
fi
if [[ "$PACK" == 1 ]]; then
    tar -C "$WORK" -czf - model | split -b 15m - "$OUT/model.tgz.part-"
else
    rm -rf "$OUT/model" && cp -r "$WORK/model" "$OUT/model"
fi
ls -la "$OUT"

#!/usr/bin/env bash
# Train the default model further within a time budget, made for a lent GPU (DEVICE=cpu works
# too). It reads a pack of training crops made on the CPU beforehand (`geochange train pack`)
# through `python -m geochange.training`, which imports no GIS package: the GPU machine needs
# only torch and the diffusers wheel (in ./.whl, see scripts/carry_wheels.sh).
#
# From FROM (default: the shipped model) it refits the decoder (latents unchanged, so the
# diffusion model stays valid; DECODER_ONLY=0 retrains the whole autoencoder, then pass
# LDM_ARGS=--normalize-latents), or without FROM trains a new PRESET autoencoder; then it trains
# the diffusion model on. Each phase runs until its budget with checkpoints (the budget's SIGTERM
# leaves one), and the latest checkpoint is finished into a model folder (`--resume` up to that
# step saves the EMA weights). Written under $OUT, at most 8 files: the model as
# model.tgz.part-* of at most 15 MB (SPLIT=0: a model/ folder), each phase's losses CSV and last
# preview PNG, and train.log.
#
#   PACK=build/pack.npz OUT=/some/folder scripts/train_gpu.sh
# Knobs: FROM (model folder to continue; empty: a new PRESET model), PRESET (cpu),
#        AE_SECONDS (new autoencoder, only without FROM; 130), DECODER_SECONDS (60; 0 skips it),
#        DECODER_ONLY (1), LDM_SECONDS (360), BATCH (32), EVERY (checkpoint every 250 steps),
#        CROP (px; default the pack's), DEVICE (cuda), SPLIT (1), WORK (/tmp/geochange-train),
#        AE_ARGS, LDM_ARGS (more options for `train autoencoder|diffusion`, e.g. "--lr 2e-4"),
#        QUALITY (0; 1 runs `geochange evaluate` on the DATA folders with EVAL_ARGS: it needs
#        the GIS packages, so on the CPU only), WHEELS (.whl), PYTHON (python3).
set -uo pipefail
PACK=${PACK:?set PACK to a pack file made by geochange train pack}
OUT=${OUT:?set OUT to the folder for the new model}
FROM=${FROM-geochange/models/default}
PRESET=${PRESET:-cpu}
AE_SECONDS=${AE_SECONDS:-130}
DECODER_SECONDS=${DECODER_SECONDS:-60}
DECODER_ONLY=${DECODER_ONLY:-1}
LDM_SECONDS=${LDM_SECONDS:-360}
BATCH=${BATCH:-32}
EVERY=${EVERY:-250}
CROP=${CROP:-}
DEVICE=${DEVICE:-cuda}
SPLIT=${SPLIT:-1}
QUALITY=${QUALITY:-0}
PYTHON=${PYTHON:-python3}
WORK=${WORK:-/tmp/geochange-train}
WHEELS=${WHEELS:-.whl}

mkdir -p "$OUT"
exec > >(tee "$OUT/train.log") 2>&1
if [[ -d "$WHEELS" ]]; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$WHEELS"/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
rm -rf "$WORK" && mkdir -p "$WORK"
began=$SECONDS

phase() {  # phase PART SECONDS OUTPUT [options...]: train until the budget, then finish
    local part=$1 seconds=$2 output=$3
    shift 3
    local common=("$part" "$PACK" --device "$DEVICE" --batch-size "$BATCH"
        --checkpoint-every "$EVERY" -q -o "$output" ${CROP:+--crop "$CROP"} "$@")
    timeout -k 30 "$seconds" "$PYTHON" -m geochange.training "${common[@]}" --steps 1000000
    local last
    last=$(ls -d "$output"/checkpoint-* 2>/dev/null | sed 's/.*checkpoint-//' | sort -n | tail -1)
    [[ -n "$last" ]] || { echo "no checkpoint in $output"; return 1; }
    "$PYTHON" -m geochange.training "${common[@]}" --steps "$last" --resume || return 1
    cp "$output/losses.csv" "$OUT/${part}_losses.csv"
    cp "$output/checkpoint-$last/preview.png" "$OUT/${part}_preview.png" 2>/dev/null
    rm -rf "$output"/checkpoint-* "$output/losses.csv"
    echo "$part: $last steps of $BATCH in a ${seconds}s budget"
}

read -r -a AE_EXTRA <<< "${AE_ARGS:-}"
if [[ -n "$FROM" ]]; then
    BASE=$FROM
    if (( DECODER_SECONDS > 0 )); then
        refit=()
        [[ "$DECODER_ONLY" == 1 ]] && refit=(--decoder-only)
        phase autoencoder "$DECODER_SECONDS" "$WORK/decoder" --model "$BASE" "${refit[@]}" \
            "${AE_EXTRA[@]}" || exit 1
        BASE=$WORK/decoder
    fi
else
    phase autoencoder "$AE_SECONDS" "$WORK/autoencoder" --preset "$PRESET" "${AE_EXTRA[@]}" \
        || exit 1
    BASE=$WORK/autoencoder
fi
read -r -a LDM_EXTRA <<< "${LDM_ARGS:-}"
phase diffusion "$LDM_SECONDS" "$WORK/model" --model "$BASE" --cache-latents "${LDM_EXTRA[@]}" \
    || exit 1

if [[ "$QUALITY" == 1 ]]; then
    read -r -a DATA_DIRS <<< "${DATA:?QUALITY=1 needs DATA, the folders to evaluate on}"
    read -r -a EVAL_EXTRA <<< "${EVAL_ARGS:-}"
    "$PYTHON" -m geochange.cli evaluate "$WORK/model" "${DATA_DIRS[@]}" --device "$DEVICE" \
        -o "$OUT/quality" "${EVAL_EXTRA[@]}" || echo "evaluation failed; the model is kept"
fi
if [[ "$SPLIT" == 1 ]]; then
    tar -C "$WORK" -czf - model | split -b 15m - "$OUT/model.tgz.part-"
else
    rm -rf "$OUT/model" && cp -r "$WORK/model" "$OUT/model"
fi
echo "done in $((SECONDS - began)) s"
ls -la "$OUT"

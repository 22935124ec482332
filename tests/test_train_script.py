"""``scripts/train_gpu.sh`` on a CPU with tiny budgets: the command a lent GPU runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from geochange.model import SemanticLDM, load_model, preset

SCRIPT = Path(__file__).parents[1] / "scripts" / "train_gpu.sh"


def test_train_gpu_script_continues_a_model_and_evaluates_it(shared_data: Path, tmp_path: Path):
    torch.manual_seed(0)
    start = SemanticLDM(preset("tiny")).save_pretrained(tmp_path / "start")
    out = tmp_path / "out"
    env = {
        **os.environ,
        "DATA": str(shared_data / "second_examples"),
        "OUT": str(out),
        "FROM": str(start),
        "DECODER_SECONDS": "20",
        "LDM_SECONDS": "20",
        "BATCH": "2",
        "CROP": "32",
        "EVERY": "1000",  # no regular checkpoint: the budget's SIGTERM must leave one
        "DEVICE": "cpu",
        "PACK": "0",
        "EVAL_ARGS": "--crops 1 --seeds 1 --no-ablation --no-seams --segmenter-steps 2 --steps 2",
        "PYTHON": sys.executable,
        "WORK": str(tmp_path / "work"),
        "OMP_NUM_THREADS": "1",
    }
    result = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    model = load_model(out / "model")
    stages = model.training_summary
    assert stages["autoencoder"][-1]["decoder_only"] is True
    assert stages["autoencoder"][-1]["steps"] > 0 and stages["diffusion"][-1]["steps"] > 0
    assert (out / "autoencoder_losses.csv").is_file() and (out / "diffusion_losses.csv").is_file()
    report = json.loads((out / "quality" / "quality.json").read_text())
    assert report["model"] == str(tmp_path / "work" / "model")
    assert "second_examples" in report["autoencoder"]

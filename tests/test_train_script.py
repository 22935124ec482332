"""``scripts/train_gpu.sh`` on a CPU with tiny budgets: the command a lent GPU runs, from a pack."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import torch
from click.testing import CliRunner

from geochange.cli.train import train
from geochange.model import SemanticLDM, load_model, preset

SCRIPT = Path(__file__).parents[1] / "scripts" / "train_gpu.sh"


def _run_script(pack: Path, out: Path, tmp_path: Path, **knobs: str) -> subprocess.CompletedProcess:
    """``scripts/train_gpu.sh`` on the CPU, one thread, batches of 2, with ``knobs`` set."""
    env = {
        **os.environ,
        "PACK": str(pack),
        "OUT": str(out),
        "BATCH": "2",
        "EVERY": "100000",  # no regular checkpoint: the budget's SIGTERM must leave one
        "DEVICE": "cpu",
        "PYTHON": sys.executable,
        "WORK": str(tmp_path / "work"),
        "WHEELS": str(tmp_path / "no-wheels"),
        "OMP_NUM_THREADS": "1",
        **knobs,
    }
    result = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_train_gpu_script_continues_a_model_from_a_pack(shared_data: Path, tmp_path: Path):
    pack = tmp_path / "pack.npz"
    folders = [str(shared_data / "openearthmap"), str(shared_data / "flair")]
    packed = CliRunner().invoke(
        train, ["pack", *folders, "--crop", "64", "--crops", "8", "-o", str(pack)]
    )
    assert packed.exit_code == 0, packed.output
    torch.manual_seed(0)
    start = SemanticLDM(preset("tiny")).save_pretrained(tmp_path / "start")
    out = tmp_path / "out"
    result = _run_script(
        pack,
        out,
        tmp_path,
        FROM=str(start),
        DECODER_SECONDS="15",  # imports take seconds on a busy machine
        LDM_SECONDS="15",
        CROP="32",
    )
    files = sorted(p.name for p in out.iterdir())
    assert files == [
        "autoencoder_losses.csv",
        "autoencoder_preview.png",
        "diffusion_losses.csv",
        "diffusion_preview.png",
        "model.tgz.part-aa",
        "train.log",
    ]
    assert all((out / f).stat().st_size <= 16 * 2**20 for f in files)
    with tarfile.open(out / "model.tgz.part-aa") as tar:  # one part: the tiny model is small
        tar.extractall(tmp_path / "back", filter="data")
    model = load_model(tmp_path / "back" / "model")
    stages = model.training_summary
    assert stages["autoencoder"][-1]["decoder_only"] is True
    assert stages["autoencoder"][-1]["steps"] > 0 and stages["diffusion"][-1]["steps"] > 0
    assert stages["diffusion"][-1]["data"]["pack"] == str(pack)
    assert "diffusion:" in result.stdout and "done in" in result.stdout


def test_train_gpu_script_trains_a_new_patch_model_with_a_critic(shared_data: Path, tmp_path: Path):
    """The run planned for the next lent GPU: a new ``patch`` autoencoder (fitted to the pack,
    then trained with the patch critic), then a diffusion model on its latents."""
    pack = tmp_path / "pack.npz"
    packed = CliRunner().invoke(
        train,
        [
            "pack",
            str(shared_data / "openearthmap"),
            "--crop",
            "64",
            "--crops",
            "4",
            "-o",
            str(pack),
        ],
    )
    assert packed.exit_code == 0, packed.output
    out = tmp_path / "out"
    _run_script(
        pack,
        out,
        tmp_path,
        FROM="",
        PRESET="patch",
        AE_SECONDS="20",
        AE_ARGS="--adversarial 0.5 --adversarial-start 1",
        LDM_SECONDS="20",
        SPLIT="0",
    )
    model = load_model(out / "model")
    assert model.config.name == "patch" and model.config.latent_channels == 16
    stages = model.training_summary
    assert stages["autoencoder"][-1]["adversarial"] == {"weight": 0.5, "start": 1}
    assert stages["autoencoder"][-1]["decoder_only"] is False
    assert stages["diffusion"][-1]["steps"] > 0
    assert model.config.latent_shift, "a new model's latents are normalized before diffusion"

"""The semantic LDM: shapes, objectives, conditioning levers, and bit-exact model folders."""

from __future__ import annotations

import shutil

import pytest
import torch

import geochange
from geochange.classes import NODATA, NUM_CLASSES
from geochange.errors import InputError
from geochange.model import PRESETS, SemanticLDM, build_unet, load_model, one_hot, preset

SIZE = 16


def _model(**changes) -> SemanticLDM:
    torch.manual_seed(0)
    return SemanticLDM(preset("tiny").with_(**changes)).eval()


def _randomise_injection(model: SemanticLDM) -> None:
    """Injection starts at zero (a no-op); give it weights so its effect is visible."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.injection.parameters():
            p.normal_(0, 0.5)


def _inputs(model: SemanticLDM, batch: int = 2):
    g = torch.Generator().manual_seed(3)
    f = model.config.downsampling
    classes = torch.randint(0, NUM_CLASSES, (batch, SIZE, SIZE), generator=g)
    z = torch.randn(batch, model.config.latent_channels, SIZE // f, SIZE // f, generator=g)
    return z, one_hot(classes), classes


def test_one_hot_honours_nodata():
    classes = torch.tensor([[[0, 7], [NODATA, 3]]])
    out = one_hot(classes)
    assert out.shape == (1, NUM_CLASSES + 1, 2, 2)
    assert out[0, :, 1, 0].sum() == 0
    assert out[0, 7, 0, 1] == 1 and out[0, 3, 1, 1] == 1
    assert out[0, NUM_CLASSES].sum() == 0


def test_shapes():
    model = _model()
    z, mask, _ = _inputs(model)
    assert model.denoise(z, 500, mask).shape == z.shape
    images = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    latents = model.encode(images)
    assert latents.shape == z.shape
    decoded = model.decode(latents)
    assert decoded.shape == images.shape
    assert decoded.min() >= -1 and decoded.max() <= 1


def test_loss_backprops_into_unet_and_mask_encoder():
    model = _model().train()
    _randomise_injection(model)
    images = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    _, _, classes = _inputs(model)
    loss = model.loss(images, classes, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss)
    loss.backward()
    assert model.unet.conv_in.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.mask_encoder.parameters())
    assert all(p.grad is not None for p in model.injection.parameters())


def test_v_and_epsilon_targets_differ():
    z, noise, t = torch.randn(2, 4, 4, 4), torch.randn(2, 4, 4, 4), torch.tensor([100, 900])
    v = _model(prediction_type="v_prediction").target(z, noise, t)
    eps = _model(prediction_type="epsilon").target(z, noise, t)
    assert torch.equal(eps, noise)
    assert not torch.allclose(v, eps)


def test_min_snr_weights_cap_low_noise_steps():
    model = _model(prediction_type="epsilon", min_snr_gamma=5.0)
    weights = model.loss_weights(torch.tensor([0, 999]))
    assert weights[0] < 0.1 and weights[1] == pytest.approx(1.0)
    assert torch.equal(_model(min_snr_gamma=None).loss_weights(torch.tensor([0, 5])), torch.ones(2))


def test_mask_every_resolution_changes_output():
    on = _model(mask_every_resolution=True)
    off = _model(mask_every_resolution=False)
    off.load_state_dict(on.state_dict(), strict=False)
    z, mask, _ = _inputs(on)
    with torch.no_grad():
        assert torch.equal(on.denoise(z, 300, mask), off.denoise(z, 300, mask))  # zero init
        _randomise_injection(on)
        assert not torch.allclose(on.denoise(z, 300, mask), off.denoise(z, 300, mask))


def test_guidance_one_is_plain_conditional_and_needs_dropout():
    model = _model()
    z, mask, _ = _inputs(model)
    with torch.no_grad():
        plain = model.denoise(z, 200, mask)
        assert torch.equal(model.denoise(z, 200, mask, guidance_scale=1.0), plain)
        assert not torch.allclose(model.denoise(z, 200, mask, guidance_scale=3.0), plain)
    with pytest.raises(ValueError, match="mask_dropout"):
        _model(mask_dropout=0.0).denoise(z, 200, mask, guidance_scale=3.0)


def test_layout_latent_follows_measured_class_statistics():
    model = _model()
    classes = torch.zeros(1, SIZE, SIZE, dtype=torch.long)
    classes[:, :, SIZE // 2 :] = 5
    classes[:, :2, :2] = NODATA
    g = torch.Generator().manual_seed(0)
    f = model.config.downsampling
    latents = torch.randn(1, 4, SIZE // f, SIZE // f, generator=g) * 0.1
    latents[..., SIZE // f // 2 :] += 3.0
    model.measure_layout_stats(latents, classes)
    assert model.class_mean[5].mean() == pytest.approx(3.0, abs=0.1)
    assert model.class_mean[0].mean() == pytest.approx(0.0, abs=0.1)
    z = model.layout_latent(classes, g)
    assert z.shape == latents.shape
    assert z[..., SIZE // f // 2 :].mean() > 2.5 and z[..., 2:, : SIZE // f // 2].abs().mean() < 0.5


def test_save_load_is_bit_exact(tmp_path):
    model = _model()
    _randomise_injection(model)
    model.class_mean.normal_()
    model.training_summary = {"steps": 3}
    folder = model.save_pretrained(tmp_path / "m")
    loaded = geochange.load_model(folder)
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[k], restored[k]) for k in original)
    assert loaded.config == model.config and loaded.training_summary == {"steps": 3}
    z, mask, _ = _inputs(model)
    with torch.no_grad():
        assert torch.equal(model.denoise(z, 400, mask), loaded.denoise(z, 400, mask))
    assert "Untrained" not in (folder / "MODEL_CARD.md").read_text()


def test_untrained_model_card_and_missing_part(tmp_path):
    folder = _model().save_pretrained(tmp_path / "m")
    assert "Untrained" in (folder / "MODEL_CARD.md").read_text()
    shutil.rmtree(folder / "unet")
    with pytest.raises(InputError, match="unet/"):
        load_model(folder)


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_unet_sizes_of_presets():
    assert _params(build_unet(PRESETS["paper"])) == pytest.approx(57.6e6, rel=0.1)
    assert 3e6 <= _params(build_unet(PRESETS["cpu"])) <= 6e6
    assert _params(SemanticLDM(PRESETS["tiny"])) < 30_000


def test_config_round_trips_through_json():
    for config in PRESETS.values():
        assert type(config).from_dict(config.to_dict()) == config
    with pytest.raises(InputError, match="unknown model preset"):
        preset("huge")


def test_normalized_latents_have_zero_mean_unit_variance_and_survive_saving(tmp_path):
    torch.manual_seed(0)
    model = SemanticLDM(preset("tiny")).eval()
    images = torch.rand(6, 3, 32, 32) * 1.5 - 0.5
    with torch.no_grad():
        before = model.decode(model.encode(images))
        model.normalize_latents(images)
        latents = model.encode(images)
        after = model.decode(latents)
    assert latents.mean((0, 2, 3)).abs().max() < 1e-4
    assert abs(float(latents.std()) - 1.0) < 1e-2
    assert torch.allclose(before, after, atol=1e-4), "normalizing must not change the images"
    reloaded = load_model(model.save_pretrained(tmp_path / "m"))
    assert reloaded.config.latent_shift == model.config.latent_shift
    assert torch.equal(reloaded.encode(images), model.encode(images))


@pytest.mark.parametrize(
    ("part", "edit", "message"),
    [
        ("geochange.json", lambda d: d["config"].update(latent_scale=0), "latent_scale 0"),
        ("geochange.json", lambda d: d["config"].update(latent_shift=[0.1]), "latent_shift"),
        ("scheduler/scheduler_config.json", lambda d: d.update(num_train_timesteps=0), "num_tr"),
    ],
)
def test_a_tampered_model_config_is_refused(tmp_path, part, edit, message):
    """Values that load but would paint nonsense (latent_scale 0 gave an almost white t2)."""
    import json

    folder = _model().save_pretrained(tmp_path / "m")
    path = folder / part
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=message):
        load_model(folder)


def _patchy_images(count: int = 6, size: int = 32) -> torch.Tensor:
    """Smooth colour fields with some texture: images whose patches have a few dominant
    components, in [-1, 1]."""
    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(count, 3, size // 8, size // 8, generator=g) * 2 - 1
    fields = torch.nn.functional.interpolate(coarse, size=size, mode="bilinear")
    return (fields + 0.1 * torch.randn(count, 3, size, size, generator=g)).clamp(-1, 1)


def test_a_fitted_patch_autoencoder_is_the_linear_code_of_its_patches():
    """Right after ``fit`` the autoencoder is exactly the principal-component code of the
    f x f patches (its residual stacks add nothing yet): the reconstruction is the projection
    onto the leading components, each channel keeps its component's share of the variance
    (not whitened), and the channels' variance is one on average."""
    from geochange.model.patch_autoencoder import PatchAutoencoder

    torch.manual_seed(0)
    ae = PatchAutoencoder(factor=4, latent_channels=6, hidden=8, blocks=1).eval()
    images = _patchy_images()
    ae.fit(images)
    with torch.no_grad():
        latents = ae.encode(images).latents
        decoded = ae.decode(latents).sample
    assert latents.shape == (6, 6, 8, 8)
    centred = images - images.mean(dim=(0, 2, 3))[None, :, None, None]
    patches = centred.reshape(6, 3, 8, 4, 8, 4).permute(0, 2, 4, 1, 3, 5).reshape(-1, 48)
    _, spread, basis = torch.linalg.svd(patches, full_matrices=False)
    basis, spread = basis[:6], spread[:6]
    variance = latents.var(dim=(0, 2, 3))
    assert variance.mean() == pytest.approx(1.0, abs=0.02)
    assert torch.allclose(variance / variance[0], (spread / spread[0]) ** 2, rtol=0.03)
    assert variance[0] > 5 * variance[-1]
    projected = (patches @ basis.T @ basis).reshape(6, 8, 8, 3, 4, 4).permute(0, 3, 1, 4, 2, 5)
    expected = projected.reshape(6, 3, 32, 32) + images.mean(dim=(0, 2, 3))[None, :, None, None]
    assert torch.allclose(decoded, expected, atol=1e-4)
    # fewer channels keep less: the code is the leading components, not any six
    smaller = PatchAutoencoder(factor=4, latent_channels=2, hidden=8, blocks=1).eval()
    smaller.fit(images)
    with torch.no_grad():
        coarse = smaller.decode(smaller.encode(images).latents).sample
    assert (coarse - images).square().mean() > 1.5 * (decoded - images).square().mean()


def test_patch_preset_fits_spread_crops_and_saves_loads_bit_exact(tmp_path):
    """The ``patch`` preset's autoencoder fitted to crops spread through a dataset (as
    ``train`` does before the first step) reconstructs them far better than a random one, and
    loads back bit for bit."""
    from geochange.training.loops import autoencoder_loss
    from geochange.training.train import spread_crops

    model = SemanticLDM(preset("patch").with_(unet_block_out_channels=(32, 32),
                                                unet_norm_num_groups=8)).eval()  # fmt: skip
    assert model.config.downsampling == 8 and model.config.latent_channels == 16
    images = _patchy_images(count=4, size=64)

    class Crops:
        def __len__(self) -> int:
            return 4

        def unaugmented(self, index: int):
            return images[index], torch.zeros(64, 64, dtype=torch.long)

    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        random_loss = autoencoder_loss(model, images, generator)
        model.vae.fit(spread_crops(Crops(), 64))
        fitted_loss = autoencoder_loss(model, images, generator)
    assert fitted_loss < 0.5 * random_loss
    folder = model.save_pretrained(tmp_path / "patch")
    loaded = load_model(folder)
    with torch.no_grad():
        assert torch.equal(loaded.decode(loaded.encode(images)), model.decode(model.encode(images)))

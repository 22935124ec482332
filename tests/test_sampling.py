"""The ChangeAnywhere sampler and the latent canvas, with fake denoisers and a tiny random UNet."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, UNet2DModel

from geochange.classes import BUILDING, ROAD, TREE, WATER
from geochange.sampling import (
    ChangeSchedule,
    anchor,
    canvas_denoise,
    change_maps,
    draw_i_change,
    fuse_step,
    mix,
    sample_change,
    tile_windows,
    window_weights,
)

BETAS = {
    "num_train_timesteps": 1000,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.0015,
    "beta_end": 0.0205,
}


def ddim() -> DDIMScheduler:
    # Latents are not images in [-1, 1]: DDIM's default x0 clipping would clamp them.
    return DDIMScheduler(**BETAS, clip_sample=False)


def dpm() -> DPMSolverMultistepScheduler:
    return DPMSolverMultistepScheduler(**BETAS, algorithm_type="dpmsolver++")


def maps(batch: int = 2, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Left half unchanged, of which the top quarter is held (a building)."""
    unchanged = torch.zeros(batch, 1, size, size)
    unchanged[..., : size // 2] = 1
    hold = torch.zeros_like(unchanged)
    hold[..., : size // 4, : size // 2] = 1
    return unchanged, hold


def test_mix_hand_computed() -> None:
    # ẑ_A = √0.36·1 + √0.64·2 = 2.2; the running z is 5 everywhere.
    z, z_a, noise = (
        torch.full((2, 1, 1, 3), 5.0),
        torch.ones(2, 1, 1, 3),
        torch.full((2, 1, 1, 3), 2.0),
    )
    unchanged = torch.tensor([1.0, 1.0, 0.0]).view(1, 1, 1, 3).expand(2, 1, 1, 3)
    hold = torch.tensor([0.0, 1.0, 1.0]).view(1, 1, 1, 3).expand(2, 1, 1, 3)  # hold never beats M=0
    i_change = torch.tensor([30, 44])
    expected = {  # step -> per sample: (unchanged, unchanged held, changed)
        10: [[2.2, 2.2, 5.0], [2.2, 2.2, 5.0]],
        35: [[5.0, 2.2, 5.0], [2.2, 2.2, 5.0]],
        47: [[5.0, 2.2, 5.0], [5.0, 2.2, 5.0]],
        48: [[5.0, 5.0, 5.0], [5.0, 5.0, 5.0]],
    }
    for step, values in expected.items():
        out = mix(z, z_a, unchanged, hold, step, 50, i_change, 0.36, noise)
        assert torch.allclose(out.flatten(1), torch.tensor(values)), step


def test_schedule_is_by_fraction() -> None:
    schedule = ChangeSchedule()
    assert schedule.change_range(50) == (30, 44)
    assert schedule.hold_start(50) == 48
    assert schedule.change_range(25) == (15, 22)
    assert schedule.hold_start(25) == 24
    with pytest.raises(ValueError, match="change_start"):
        ChangeSchedule(change_start=0.9, change_end=0.5)


def test_i_change_drawn_per_sample_within_range() -> None:
    drawn = draw_i_change(ChangeSchedule(), 50, 600, torch.Generator().manual_seed(0))
    assert drawn.min() == 30 and drawn.max() == 44
    assert len(drawn.unique()) == 15


def test_change_maps_at_latent_resolution() -> None:
    mask_a = torch.full((1, 8, 8), TREE)
    mask_a[:, :4] = BUILDING
    mask_a[:, 4:, :4] = ROAD
    mask_b = mask_a.clone()
    mask_b[:, :, 4:] = WATER  # right half changed (except where it already was water: nowhere)
    unchanged, hold = change_maps(mask_a, mask_b, (4, 4))
    assert unchanged.shape == hold.shape == (1, 1, 4, 4)
    assert unchanged[..., :2].eq(1).all() and unchanged[..., 2:].eq(0).all()
    assert hold[..., :2].eq(1).all() and hold[..., 2:].eq(0).all()


def record(inner=None):
    """A fake denoiser that keeps what it was called with (the latents after mixing)."""
    seen: list[tuple[torch.Tensor, int]] = []

    def denoise(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen.append((z.clone(), int(t)))
        return 0.5 * z if inner is None else inner(z, t)

    return denoise, seen


def replayed_noise(seed: int, shape: tuple[int, ...], steps: int) -> list[torch.Tensor]:
    """The per-step ε that ``sample_change`` draws, replayed in its documented order."""
    generator = torch.Generator().manual_seed(seed)
    draw_i_change(ChangeSchedule(), steps, shape[0], generator)
    torch.randn(shape, generator=generator)  # the start noise
    return [torch.randn(shape, generator=generator) for _ in range(steps)]


def test_sampler_copies_renoised_t1_until_i_change_and_holds_until_last_two() -> None:
    unchanged, hold = maps(batch=3)
    free = (unchanged - hold).bool().expand(3, 4, 8, 8)
    held, changed = hold.bool().expand(3, 4, 8, 8), ~unchanged.bool().expand(3, 4, 8, 8)
    z_a = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(9))
    scheduler = ddim()
    denoise, seen = record()
    sample_change(denoise, scheduler, z_a, unchanged, hold, torch.Generator().manual_seed(1))
    i_change = draw_i_change(ChangeSchedule(), 50, 3, torch.Generator().manual_seed(1))
    noise = replayed_noise(1, tuple(z_a.shape), 50)
    assert len(seen) == 50
    for i, ((z, t), eps) in enumerate(zip(seen, noise, strict=True)):
        a = scheduler.alphas_cumprod[t]
        z_hat = a.sqrt() * z_a + (1 - a).sqrt() * eps
        same = z == z_hat
        assert not same[changed].any(), i  # changed pixels are always generated
        assert same[held].all() == (i < 48), i
        for b in range(3):
            copied = same[b][free[b]]
            assert copied.all() if i < i_change[b] else not copied.any(), (i, b)


@pytest.mark.parametrize(
    ("make", "steps", "eta"), [(ddim, 50, 0.0), (ddim, 20, 0.7), (dpm, 20, 0.0)]
)
def test_all_unchanged_with_true_noise_returns_t1(make, steps: int, eta: float) -> None:
    scheduler = make()
    z_a = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    unchanged, hold = torch.ones(2, 1, 8, 8), torch.zeros(2, 1, 8, 8)

    def true_noise(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = scheduler.alphas_cumprod[int(t)]
        return (z - a.sqrt() * z_a) / (1 - a).sqrt()

    gen = torch.Generator().manual_seed(0)
    out = sample_change(true_noise, scheduler, z_a, unchanged, hold, gen, steps, eta=eta)
    assert out.shape == z_a.shape and torch.isfinite(out).all()
    assert torch.allclose(out, z_a, atol=1e-3)


@pytest.mark.parametrize("make", [ddim, dpm])
def test_changed_land_is_generated_with_both_solvers(make) -> None:
    unchanged, hold = maps()
    z_a = torch.full((2, 4, 8, 8), 3.0)
    gen = torch.Generator().manual_seed(0)
    out = sample_change(lambda z, t: 0.1 * z, make(), z_a, unchanged, hold, gen, 20)
    assert out.shape == z_a.shape and torch.isfinite(out).all()
    assert not torch.allclose(out[..., 4:], z_a[..., 4:], atol=0.5)


def test_eta_rejected_where_the_solver_has_none() -> None:
    unchanged, hold = maps()
    with pytest.raises(ValueError, match="eta"):
        sample_change(
            lambda z, t: z, dpm(), torch.zeros(2, 4, 8, 8), unchanged, hold,
            torch.Generator(), 10, eta=0.5,
        )  # fmt: skip


def test_same_seed_same_latents_other_seed_different() -> None:
    unchanged, hold = maps()
    z_a = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(5))

    def run(seed: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        return sample_change(lambda z, t: 0.3 * z, ddim(), z_a, unchanged, hold, gen, 10, eta=1.0)

    assert torch.equal(run(7), run(7))
    assert not torch.allclose(run(7), run(8))


def test_start_latent_skips_to_the_start_fraction() -> None:
    scheduler = ddim()
    z_a = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    unchanged, hold = maps(batch=1)
    denoise, seen = record()
    gen = torch.Generator().manual_seed(0)
    sample_change(
        denoise, scheduler, z_a, unchanged, hold, gen, 20, start_latent=z_a, start_fraction=0.4
    )
    assert [t for _, t in seen] == scheduler.timesteps[8:].tolist()
    denoise, seen = record()
    sample_change(
        denoise, ddim(), z_a, unchanged, hold, gen, 1, start_latent=z_a, start_fraction=0.7
    )
    assert len(seen) == 1, "a start fraction that rounds past the end still runs the last step"


def test_anchored_halo_is_pinned_at_every_step() -> None:
    z_a, neighbour = torch.zeros(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    halo = torch.zeros(1, 1, 8, 8)
    halo[..., :2] = 1
    z_a, unchanged, pin = anchor(z_a, torch.zeros(1, 1, 8, 8), neighbour, halo)
    scheduler = ddim()
    denoise, seen = record()
    gen = torch.Generator().manual_seed(4)
    sample_change(denoise, scheduler, z_a, unchanged, torch.zeros_like(pin), gen, 50, pin=pin)
    for (z, t), eps in zip(seen, replayed_noise(4, (1, 4, 8, 8), 50), strict=True):
        a = scheduler.alphas_cumprod[t]
        z_hat = a.sqrt() * neighbour + (1 - a).sqrt() * eps
        assert torch.equal(z[..., :2], z_hat[..., :2])
        assert not (z[..., 2:] == z_hat[..., 2:]).any()


@pytest.mark.parametrize(
    ("height", "width", "tile", "overlap"),
    [(24, 24, 16, 8), (37, 20, 16, 4), (10, 7, 16, 4), (16, 16, 16, 0), (33, 50, 8, 3)],
)
def test_windows_cover_every_pixel_inside_the_canvas(height, width, tile, overlap) -> None:
    windows = tile_windows(height, width, tile, overlap)
    covered = torch.zeros(height, width)
    for rows, cols in windows:
        assert 0 <= rows.start < rows.stop <= height and 0 <= cols.start < cols.stop <= width
        assert (rows.stop - rows.start, cols.stop - cols.start) == (
            min(tile, height),
            min(tile, width),
        )
        covered[rows, cols] += 1
    assert covered.min() >= 1
    weights = window_weights(windows, height, width, overlap)
    assert weights.min() > 0
    for (rows, cols), w in zip(windows, weights, strict=True):  # no taper on the border
        if rows.start == 0:
            assert torch.equal(w[0], w.amax(dim=0))
        if cols.stop == width:
            assert torch.equal(w[:, -1], w.amax(dim=1))
    with pytest.raises(ValueError, match="overlap"):
        tile_windows(height, width, tile, tile)


def local_ramp(tiles: torch.Tensor, t: torch.Tensor, windows) -> torch.Tensor:
    """Smooth in space, but each window adds its own ramp, so naive stitching leaves seams."""
    h, w = tiles.shape[-2:]
    ramp = torch.arange(h)[:, None] / h + torch.arange(w)[None, :] / w
    return tiles + 0.5 * ramp


def border_ratio(out: torch.Tensor, windows, size: int) -> float:
    """Mean squared step across window borders over the same two pixels away, worst axis.

    Comparing each border with its own neighbourhood keeps the measure fair on fields whose
    gradient varies in space.
    """
    ratios = []
    for axis, pick, across in ((3, 1, 2), (2, 0, 3)):
        energy = out.diff(dim=axis).pow(2).mean(dim=(0, 1, across))
        gaps = {w[pick].start - 1 for w in windows if w[pick].start > 0}
        gaps |= {w[pick].stop - 1 for w in windows if w[pick].stop < size}
        near = {g + d for g in gaps for d in (-2, 2) if 0 <= g + d < size - 1} - gaps
        ratios.append(float(energy[sorted(gaps)].mean() / energy[sorted(near)].mean()))
    return max(ratios)


def smooth_field(size: int) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return (torch.sin(x / 7) + torch.cos(y / 9)).expand(1, 2, size, size).contiguous()


def test_fused_canvas_has_no_seam_at_window_borders() -> None:
    size = 40
    z = smooth_field(size)
    windows = tile_windows(size, size, 16, 8)

    def smooth(tiles: torch.Tensor, t: torch.Tensor, chunk) -> torch.Tensor:
        return 0.5 * tiles + torch.sin(tiles)

    for taper in (0, 8):
        out = canvas_denoise(smooth, windows, batch_size=3, taper=taper)(z, torch.tensor(10))
        assert border_ratio(out, windows, size) <= 1.1
        assert torch.allclose(out, smooth(z, torch.tensor(10), windows), atol=1e-6)
    # The measure has teeth: windows that disagree, butted without overlap, leave a seam.
    hard = tile_windows(size, size, 8, 0)
    assert border_ratio(fuse_step(local_ramp, z, torch.tensor(10), hard, 4), hard, size) > 1.1


def test_taper_softens_tile_edge_effects() -> None:
    """Zero padding darkens tile edges, as a real UNet does; the taper gives edges low weight."""
    size = 40
    z, windows = smooth_field(size), tile_windows(size, size, 16, 8)

    def padded_blur(tiles: torch.Tensor, t: torch.Tensor, chunk) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(tiles, 5, 1, 2)

    ratio = {
        taper: border_ratio(
            canvas_denoise(padded_blur, windows, 4, taper)(z, torch.tensor(1)), windows, size
        )
        for taper in (0, 8)
    }
    assert ratio[8] < 0.6 * ratio[0]


def test_one_window_canvas_equals_the_plain_denoiser() -> None:
    z = torch.randn(2, 4, 12, 12)
    windows = tile_windows(12, 12, 16, 4)
    assert len(windows) == 1
    out = canvas_denoise(local_ramp, windows, batch_size=4, taper=4)(z, torch.tensor(1))
    assert torch.equal(out, local_ramp(z, torch.tensor(1), windows))


def test_tiny_unet_through_the_canvas_composes() -> None:
    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=16,
        in_channels=4 + 8,
        out_channels=4,
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=4,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
    ).eval()
    size = 24
    mask_a = torch.randint(0, 8, (1, size, size), generator=torch.Generator().manual_seed(1))
    mask_b = mask_a.clone()
    mask_b[:, :, size // 2 :] = BUILDING
    condition = torch.nn.functional.one_hot(mask_b, 8).permute(0, 3, 1, 2).float()
    unchanged, hold = change_maps(mask_a, mask_b, (size, size))
    windows = tile_windows(size, size, 16, 8)
    calls = []

    def denoise_tiles(tiles: torch.Tensor, t: torch.Tensor, chunk) -> torch.Tensor:
        calls.append(len(chunk))
        cond = torch.cat([condition[..., rows, cols] for rows, cols in chunk])
        return unet(torch.cat([tiles, cond], dim=1), t).sample

    z_a = torch.randn(1, 4, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = sample_change(
            canvas_denoise(denoise_tiles, windows, batch_size=3, taper=8),
            ddim(),
            z_a,
            unchanged,
            hold,
            torch.Generator().manual_seed(3),
            num_steps=4,
        )
    assert out.shape == z_a.shape and torch.isfinite(out).all()
    assert calls == [3, 1] * 4  # 4 windows in batches of 3, fused at every step


class CountingModel:
    """Stands for the model: each call's batch size is recorded; outputs are elementwise, so a
    sample's output does not depend on its batch-mates."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, int]] = []

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        self.batches.append(("encode", images.shape[0]))
        return images[:, :2, ::2, ::2] * 2

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        self.batches.append(("decode", latents.shape[0]))
        return latents.repeat_interleave(2, -1).repeat_interleave(2, -2)[:, :1] - 1

    def denoise(self, z_t, t, mask, guidance_scale=1.0):
        self.batches.append(("denoise", z_t.shape[0]))
        steps = torch.as_tensor(t).expand(z_t.shape[0])
        return z_t * guidance_scale + steps[:, None, None, None] + mask[:, :1]


def test_lockstep_batches_every_painting_and_keeps_each_ones_result():
    """Paintings of unequal length (steps), one of two image sizes: calls of the same kind and
    shape share a batch while other paintings wait or have ended; each gets its own output."""
    from geochange.sampling.lockstep import Lockstep

    def painting(index: int, steps: int, size: int):
        def paint(model) -> torch.Tensor:
            z = model.encode(torch.full((1, 3, size, size), float(index)))
            for step in range(steps):
                z = model.denoise(z, step, torch.ones((1, 9, size // 2, size // 2)))
            return model.decode(z)

        return paint

    plans = [(0, 3, 8), (1, 1, 8), (2, 3, 8), (3, 2, 16)]
    model = CountingModel()
    lockstep = Lockstep(model)
    results = lockstep.run([painting(*plan) for plan in plans])
    alone = [painting(*plan)(CountingModel()) for plan in plans]
    for result, expected in zip(results, alone, strict=True):
        assert torch.equal(result, expected)
    # one line per round, batches in the order of their first painting: the encodes (8 px
    # thrice, 16 px); step 0; step 1 and painting 1's decode; ...
    assert model.batches == [
        ("encode", 3), ("encode", 1),
        ("denoise", 3), ("denoise", 1),
        ("denoise", 2), ("decode", 1), ("denoise", 1),
        ("denoise", 2), ("decode", 1),
        ("decode", 2),
    ]  # fmt: skip
    assert lockstep.calls == len(model.batches)


def test_lockstep_error_reaches_the_caller_without_hanging_the_others():
    from geochange.sampling.lockstep import Lockstep

    def fine(model) -> torch.Tensor:
        z = model.encode(torch.ones((1, 3, 4, 4)))
        return model.decode(model.denoise(z, 1, torch.ones((1, 9, 2, 2))))

    def broken(model) -> torch.Tensor:
        model.encode(torch.ones((1, 3, 4, 4)))
        raise ValueError("no land cover")

    def bad_shape(model) -> torch.Tensor:
        return model.denoise(torch.ones((1, 2, 2, 2)), 1, torch.ones((1, 9, 3, 3)))

    with pytest.raises(ValueError, match="no land cover"):
        Lockstep(CountingModel()).run([fine, broken, fine])
    # a model error reaches the paintings of that batch only, and the first is raised
    with pytest.raises(RuntimeError):
        Lockstep(CountingModel()).run([fine, bad_shape])

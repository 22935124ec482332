"""The image pass: paint the t1 and t2 images of a simulated change with the semantic LDM.

``Painter.paint`` runs as a pass of a ``geochange.run.Run``, after its change maps: block by
block in phase order, the t1/t2 classes of block + halo are read from the scratch rasters, t1
latents come from a real image (``--image``) or are generated from the t1 mask, t2 latents are
drawn with the ChangeAnywhere rule on the seamless latent canvas, and only each block's core is
decoded into ``t1.tif``/``t2.tif``. The painted cores are kept in scratch rasters; a later block
encodes the ones its halo overlaps and pins its halo on them (``anchor``), so its core grows out
of its neighbours without a seam.

Noise is drawn per (seed, block, timestamp), so a rerun gives the same pixels.

``Painter.paint_block`` works on arrays alone, so painting dataset pairs from plain image and
mask tiles needs no GIS package (the GPU machine has none): the rasterio-backed parts (scratch
rasters, COG writing, windows) are imported inside the run pass that uses them."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, SchedulerMixin
from scipy import ndimage

from geochange.acquisition import PRESETS, Acquisition, apply_acquisition, margin
from geochange.classes import NODATA
from geochange.distributed import worker_cached
from geochange.errors import InputError
from geochange.hashing import folder_sha256
from geochange.model import SemanticLDM, load_model, one_hot, pick_device
from geochange.model.bank import ExemplarBank, load_bank
from geochange.plan import Block, Plan
from geochange.sampling import (
    ChangeSchedule,
    anchor,
    blend_weight,
    canvas_denoise,
    change_maps,
    compose,
    exemplar_fill,
    first_step,
    sample_change,
    to_latent,
    window_weights,
)
from geochange.sampling import tile_windows as latent_windows
from geochange.sampling.lockstep import Member
from geochange.seeds import ACQUISITION, child_seed

if TYPE_CHECKING:
    from geochange.grid import ImageOnGrid
    from geochange.report import Reporter
    from geochange.run import Run
    from geochange.scratch import ScratchRaster

DEFAULT_MODEL_DIR = Path(__file__).parent / "models" / "default"
SAMPLERS = ("ddim", "dpm")
COMPOSITIONS = ("pixel", "latent")
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
AUTO = "auto"
"""The precision ``native_precision`` picks for the device."""
T1 = 1
"""The first timestamp; timestamps (1, 2, ...) are part of each block's noise seed."""
Latent = torch.Tensor | Callable[[], torch.Tensor]
"""A latent, or how to encode it when it is needed: an image whose successor fills exemplars
is never encoded itself, since the successor encodes its own base (a tenth of a dataset pair's
time went to that unused encoding)."""
ENCODINGS, DECODINGS = 1, 2
"""Passes over its canvas that painting an image takes, mostly: its base encoded (the real
image or collage, with the exemplars in it); the drawn latents and the base decoded for the
composition."""
REST_PER_MODEL_S = 0.3
"""Seconds of painting outside the model (exemplars, composition, acquisition, writing) per
second in it, for ``--dry-run``'s estimate: 0.36 for the demo, 0.21 for a real image
(houston_16 with ``--image``), on 2 CPU cores."""


@dataclass(frozen=True)
class SamplingOptions:
    """How latents are drawn; sizes are in image pixels (the model's downsampling converts)."""

    steps: int = 20
    sampler: str = "dpm"
    eta: float = 0.0
    guidance: float = 1.0
    tile_size: int = 256
    overlap: int = 64
    batch_size: int = 4
    precision: str = AUTO
    """``auto``: bf16 where the device computes it natively (``native_precision``), else fp32."""
    schedule: ChangeSchedule = field(default_factory=ChangeSchedule)
    composition: str = "pixel"
    """``pixel``: each image after t1 keeps the one before it where land did not change (and
    exemplars where it did), plus the model's variation (``t2 = t1 + blur(D(z2) - D(z1))``),
    and is the model's only elsewhere (``geochange.sampling.compose``); ``latent``: every
    pixel is decoded from the latents, as in the paper (for ablations)."""
    acquisition: Acquisition = field(default_factory=lambda: PRESETS["mild"])
    """How the acquisition of each image after t1 differs from t1's (``geochange.acquisition``):
    applied after painting, never to the labels."""
    exemplars: bool = True
    """Changed land starts from real pixels of its new class (cut from the image before it, or
    from the model's exemplar bank) which the model harmonizes; off: from the model alone."""
    compile: bool = False
    """``torch.compile`` the UNet: minutes of compiling first, then faster steps on a GPU."""
    threads: int | None = None
    """Torch threads per painting process on a CPU; None: all cores in this process, one per
    Dask worker. The sums inside the model depend on it, so outputs are byte-identical only
    between runs with the same value."""

    def check(self, model: SemanticLDM) -> None:
        """Reject options the model cannot run with, naming the fix."""
        unit = pad_multiple(model)
        problems = [
            (self.steps >= 1, "--steps must be at least 1"),
            (self.sampler != "dpm" or self.steps >= 2, "--sampler dpm needs --steps 2 or more"),
            (self.sampler in SAMPLERS, f"--sampler must be one of {', '.join(SAMPLERS)}"),
            (self.sampler == "ddim" or self.eta == 0.0, "--eta applies to ddim only; leave it 0"),
            (self.batch_size >= 1, "--batch-size must be at least 1"),
            (self.threads is None or self.threads >= 1, "--threads must be at least 1"),
            (
                self.precision in (*PRECISIONS, AUTO),
                f"--precision must be one of {', '.join((*PRECISIONS, AUTO))}",
            ),
            (
                self.composition in COMPOSITIONS,
                f"--composition must be one of {', '.join(COMPOSITIONS)}",
            ),
            (
                self.tile_size > 0 and self.tile_size % unit == 0,
                f"--tile-size must be a positive multiple of {unit} pixels for this model",
            ),
            (
                0 <= self.overlap < self.tile_size,
                "--overlap must be at least 0 and smaller than --tile-size",
            ),
            (
                self.guidance == 1.0 or model.config.mask_dropout > 0,
                "--guidance other than 1 needs a model trained with mask dropout",
            ),
        ]
        for ok, message in problems:
            if not ok:
                raise InputError(message)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> SamplingOptions:
        return cls(
            **{
                **values,
                "schedule": ChangeSchedule(**values["schedule"]),
                "acquisition": Acquisition(**values["acquisition"]),
            }
        )


def native_precision(device: torch.device) -> str:
    """bf16 where ``device`` computes it natively: a CUDA GPU that supports it, or a CPU with
    AVX-512 BF16 or AMX, where bf16 ran the model 1.7 times as fast as fp32 and moved pixels by
    at most 2 grey levels (docs/benchmarks.md); fp32 elsewhere, where bf16 would be emulated."""
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported()
    else:
        cpu = torch.cpu
        native = any(
            getattr(cpu, probe, lambda: False)()
            for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        )
    return "bf16" if native else "fp32"


def with_precision(options: SamplingOptions, device: torch.device) -> SamplingOptions:
    """``options`` with ``auto`` precision made concrete for ``device``, so that run records,
    resume keys and Dask workers all see the precision that painted."""
    if options.precision != AUTO:
        return options
    return replace(options, precision=native_precision(device))


def resolve_model(spec: str) -> Path:
    """``default`` is the model shipped inside the package; anything else is a model folder."""
    if spec != "default":
        return Path(spec)
    if not DEFAULT_MODEL_DIR.is_dir():
        raise InputError(
            f"the default model is missing from this installation ({DEFAULT_MODEL_DIR})",
            "reinstall geochange (the model ships inside the package), or train one with "
            "`geochange train diffusion ... -o MODEL` and pass --model MODEL",
        )
    return DEFAULT_MODEL_DIR


def model_hash(folder: Path) -> str:
    """sha256 over the model folder's files (relative names and contents, in name order)."""
    return folder_sha256(folder)


def pad_multiple(model: SemanticLDM) -> int:
    """Image pixels that a window must be a multiple of: autoencoder and UNet downsampling."""
    levels = len(model.config.unet_block_out_channels) - 1
    return model.config.downsampling * 2**levels


def block_seed(seed: int, block: Block, timestamp: int) -> int:
    return child_seed(seed, block.row, block.col, timestamp)


@dataclass(frozen=True)
class PainterSpec:
    """How a Dask worker builds the driver's painter: the model by name and hash."""

    model: str
    sha256: str
    options_json: str
    seed: int
    device: str

    def build(self) -> Painter:
        folder = resolve_model(self.model)
        if model_hash(folder) != self.sha256:
            raise InputError(
                f"the model {self.model} on this Dask worker differs from the one asked for",
                "install the same geochange and model on every worker",
            )
        options = SamplingOptions.from_dict(json.loads(self.options_json))
        return Painter(
            load_model(folder),
            options,
            self.seed,
            pick_device(self.device),
            bank=load_bank(folder),
        )


@dataclass
class BlockJob:
    """One block's painting task: its class windows, painted neighbours and real t1 image."""

    block: Block
    classes: list[np.ndarray]
    neighbours: dict[str, np.ndarray]
    known: np.ndarray
    t1_image: tuple[np.ndarray, np.ndarray] | None
    pixel_m: float | None = None
    """Metres per pixel of the block (the geometric mean of its sides); None: the model's."""


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Torch's CPU threads set to ``threads`` (None: as they are) for the ``with`` block."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def built(painter: Painter | PainterSpec) -> Painter:
    """The painter itself, or the one a spec builds (once per process: on a Dask worker)."""
    if isinstance(painter, PainterSpec):
        return worker_cached(painter, painter.build)
    return painter


def paint_task(
    painter: Painter | PainterSpec, job: BlockJob
) -> tuple[list[np.ndarray], np.ndarray, float, int]:
    """Paint one block (here, or on a worker that builds the painter once); also returns the
    seconds in the model and the tile windows it ran."""
    painter = built(painter)
    model_s, windows = painter.model_s, painter.windows
    with torch_threads(painter.options.threads), painter.autocast():
        images, valid1 = painter.paint_block(
            job.block, job.classes, job.neighbours, job.known, job.t1_image, job.pixel_m
        )
    return images, valid1, painter.model_s - model_s, painter.windows - windows


class Painter:
    """The image pass of ``synth`` (``paint``, run by a ``geochange.run.Run``) and the painter of
    dataset pairs (``paint_block``, on arrays alone)."""

    def __init__(
        self,
        model: SemanticLDM,
        options: SamplingOptions,
        seed: int,
        device: torch.device,
        image: ImageOnGrid | None = None,
        model_info: dict | None = None,
        *,
        anchor_blocks: bool = True,
        spec: PainterSpec | None = None,
        bank: ExemplarBank | None = None,
    ) -> None:
        """``anchor_blocks=False`` paints every block on its own (only to measure seams);
        ``spec`` lets Dask workers build the same painter; ``bank`` holds exemplars of classes
        that an image lacks."""
        options = with_precision(options, device)
        options.check(model)
        if options.precision == "fp16" and device.type != "cuda":
            raise InputError("--precision fp16 needs --device cuda", "use bf16 or fp32 on a CPU")
        # channels-last convolutions: 10-18 % less time in every model call on the CPU
        layout = torch.channels_last
        self.model = model.to(device=device, dtype=torch.float32, memory_format=layout).eval()
        if options.compile:
            self.model.unet.compile()
        self.options = options
        self.seed = seed
        self.device = device
        self.image = image
        self.model_info = model_info or {}
        self.anchor_blocks = anchor_blocks
        self.spec = spec
        self.bank = bank
        self.f = model.config.downsampling
        self.model_s = 0.0
        self.windows = 0
        self._scheduler: SchedulerMixin | None = None
        self.on_windows: Callable[[int], None] | None = None
        """Told the number of tile windows after every model call (progress in this process)."""

    def autocast(self) -> torch.autocast:
        """Mixed precision for the model's arithmetic; weights and latents stay float32."""
        precision = self.options.precision
        return torch.autocast(
            self.device.type, dtype=PRECISIONS[precision], enabled=precision != "fp32"
        )

    @contextmanager
    def inference(self) -> Iterator[None]:
        """How every model call runs: no gradients, at the options' precision."""
        with torch.no_grad(), self.autocast():
            yield

    def scheduler(self) -> SchedulerMixin:
        """A new scheduler per sampling: it keeps state (its steps, DPM's last outputs), and
        paintings may run side by side (``with_model``). A copy of one built once: building
        from the config took four times as long."""
        if self._scheduler is None:
            kind = DPMSolverMultistepScheduler if self.options.sampler == "dpm" else DDIMScheduler
            self._scheduler = kind.from_config(self.model.scheduler.config)
        return copy.deepcopy(self._scheduler)

    def with_model(self, model: SemanticLDM | Member) -> Painter:
        """This painter calling ``model`` instead (a ``Lockstep`` member, which batches its
        calls with other paintings'), with counters of its own."""
        painter = copy.copy(self)
        painter.model, painter.model_s, painter.windows, painter.on_windows = model, 0.0, 0, None
        return painter

    def fingerprint(self) -> dict:
        return {
            "model": self.model_info.get("sha256"),
            "sampling": self.options.to_dict(),
            "anchor_blocks": self.anchor_blocks,
        }

    def paint(self, run: Run) -> tuple[dict[str, Path], dict]:
        """The image pass of ``run``: paint every block into scratch rasters (phase by phase,
        resumable block by block), then stream them into the image COGs."""
        from geochange.scratch import ScratchRaster  # files: see the module's last paragraph

        plan, scratch, scheduler, manifest = run.plan, run.scratch, run.scheduler, run.manifest
        grid = plan.grid
        stamps = [f"t{k}" for k in range(1, run.timestamps + 1)]
        if scheduler.distributed and self.spec is None:
            raise InputError("this painter has no model spec for Dask workers to load")
        task = partial(paint_task, self.spec if scheduler.distributed else self)
        reuse, state = manifest.resumed, manifest.folder
        painted = {
            name: ScratchRaster(
                state / f"{name}_rgb.raw", grid.height, grid.width, bands=3, reuse=reuse
            )
            for name in stamps
        }
        painted["valid"] = ScratchRaster(
            state / "t1_valid.raw", grid.height, grid.width, reuse=reuse
        )
        anchored = stamps[1:] if self.image is not None else stamps
        anchored = anchored if self.anchor_blocks else []
        done = manifest.done("paint")
        model_s, windows = 0.0, 0
        real_t1 = self.image is not None
        planned = {
            (b.row, b.col): self.block_windows(b, len(stamps), real_t1) for b in plan.blocks()
        }
        progress = _WindowProgress(run.reporter)
        try:
            run.reporter.stage("paint", sum(planned.values()), unit="tile window")
            run.reporter.advance(sum(planned[key] for key in done))
            self.on_windows = None if scheduler.distributed else progress.tick
            for phase in plan.phases():
                todo = [b for b in phase if (b.row, b.col) not in done]
                jobs = (
                    progress.begin(
                        planned[block.row, block.col],
                        self._job(plan, block, scratch, stamps, painted, anchored, done),
                    )
                    for block in todo
                )
                for block, result in zip(todo, scheduler.imap(task, jobs), strict=True):
                    images, valid1, block_model_s, block_windows = result
                    rows, cols = block.core_in_window
                    for name, rgb in zip(stamps, images, strict=True):
                        painted[name].write(block.core, rgb[:, rows, cols])
                    painted["valid"].write(block.core, valid1[rows, cols].astype(np.uint8))
                    model_s += block_model_s
                    windows += block_windows
                    manifest.mark("paint", block)
                    progress.end(planned[block.row, block.col])
                done |= {(b.row, b.col) for b in todo}
            files = self._write_images(
                plan, scratch, painted, stamps, run.partial, run.creation_options
            )
        finally:
            self.on_windows = None
            for raster in painted.values():
                raster.close()
        summary = {
            "model": self.model_info,
            "sampling": {
                **self.options.to_dict(),
                "device": str(self.device),
                "image": None if self.image is None else str(self.image.path),
                "timestamps": len(stamps),
                "tile_windows": windows,
                "model_s": round(model_s, 3),
            },
        }
        return files, summary

    def _job(
        self,
        plan: Plan,
        block: Block,
        scratch: dict[str, ScratchRaster],
        stamps: list[str],
        painted: dict[str, ScratchRaster],
        anchored: list[str],
        done: set[tuple[int, int]],
    ) -> BlockJob:
        """What painting ``block`` needs, read here so workers need no files."""
        known = painted_mask(plan, block, done)
        neighbours = (
            {name: painted[name].read(block.window) for name in anchored} if known.any() else {}
        )
        return BlockJob(
            block,
            [scratch[name].read(block.window) for name in stamps],
            neighbours,
            known,
            None if self.image is None else self.image.read(block.window),
            plan.grid.gsd_m(),
        )

    def _write_images(
        self,
        plan: Plan,
        scratch: dict[str, ScratchRaster],
        painted: dict[str, ScratchRaster],
        stamps: list[str],
        folder: Path,
        creation_options: dict[str, str],
    ) -> dict[str, Path]:
        """Stream the painted scratch rasters into RGB COGs masked where there is no data."""
        from rasterio.enums import ColorInterp

        from geochange.writing.geotiff import StreamingGeoTIFF, finish_all

        rasters = {
            name: StreamingGeoTIFF(folder / f"{name}.tif", plan.grid, None, "", count=3)
            for name in stamps
        }
        try:
            for name, raster in rasters.items():
                raster.dataset.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
                for band, colour in enumerate(("red", "green", "blue"), start=1):
                    raster.dataset.set_band_description(band, f"{colour} {name}")
            for block in plan.blocks():
                for name, raster in rasters.items():
                    raster.write(block.core, self._acquired(plan, name, block, scratch, painted))
                    if name == "t1":
                        valid = painted["valid"].read(block.core) > 0
                    else:
                        valid = scratch[name].read(block.core) != NODATA
                    raster.dataset.write_mask(valid.astype(np.uint8) * 255, window=block.core)
            jobs = [(raster, "AVERAGE") for raster in rasters.values()]
            files = dict(zip(rasters, finish_all(jobs, creation_options), strict=True))
        finally:
            for raster in rasters.values():
                raster.discard()
        return files

    def _acquired(
        self,
        plan: Plan,
        name: str,
        block: Block,
        scratch: dict[str, ScratchRaster],
        painted: dict[str, ScratchRaster],
    ) -> np.ndarray:
        """A block core of painted image ``name`` with its acquisition differences (none for
        t1), computed over the core plus the context they need so that cores join exactly."""
        from rasterio.windows import Window

        acquisition = self.options.acquisition
        if name == "t1" or acquisition.is_identity():
            return painted[name].read(block.core)
        grid, gsd = plan.grid, plan.grid.gsd_m()
        extra = margin(acquisition, gsd)
        core = block.core
        top, left = max(int(core.row_off) - extra, 0), max(int(core.col_off) - extra, 0)
        bottom = min(int(core.row_off + core.height) + extra, grid.height)
        right = min(int(core.col_off + core.width) + extra, grid.width)
        window = Window(left, top, right - left, bottom - top)
        seed = child_seed(self.seed, int(name[1:]), ACQUISITION)
        rgb = apply_acquisition(
            painted[name].read(window),
            scratch[name].read(window),
            acquisition,
            seed,
            (top, left),
            gsd,
        )
        rows = slice(int(core.row_off) - top, int(core.row_off) - top + int(core.height))
        cols = slice(int(core.col_off) - left, int(core.col_off) - left + int(core.width))
        return rgb[:, rows, cols]

    def paint_block(
        self,
        block: Block,
        classes: Sequence[np.ndarray],
        neighbours: dict[str, np.ndarray] | None = None,
        known: np.ndarray | None = None,
        t1_image: tuple[np.ndarray, np.ndarray] | None = None,
        pixel_m: float | None = None,
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """RGB uint8 (3, h, w) per timestamp over the block window, and where t1 holds data.

        ``classes`` are the t1, t2, ... class windows; each image after t1 is drawn from the one
        before with the ChangeAnywhere rule. ``t1_image`` (RGB uint8 (3, h, w), valid (h, w)) is
        a real t1 image; without it t1 is painted too. ``neighbours`` maps ``t1``, ``t2``, ... to
        the window's already painted RGB, valid where ``known``; the halo is pinned there so the
        block continues its neighbours. ``pixel_m`` (metres, default the model's) scales the
        exemplar bank's crops to the block's pixels.
        """
        neighbours = neighbours or {}
        bank_zoom = self.model.config.gsd_m / pixel_m if pixel_m else 1.0
        t1 = classes[0]
        height, width = t1.shape
        pad = self._padding(block)
        masks = [
            F.pad(torch.from_numpy(c).long()[None], pad, value=NODATA).to(self.device)
            for c in classes
        ]
        size = (masks[0].shape[-2] // self.f, masks[0].shape[-1] // self.f)
        valid1 = t1 != NODATA
        has_pixels = np.ones(t1.shape, bool)  # where the previous image holds data
        if t1_image is not None:
            rgb1, has_pixels = t1_image
            valid1 &= has_pixels
            z_a = partial(self._encode, rgb1, pad)
        else:
            z_a, rgb1 = self._paint_t1(block, masks[0], t1, pad, neighbours, known, bank_zoom)
        images, latent, valid = [rgb1], z_a, valid1
        for timestamp in range(T1 + 1, len(classes) + 1):
            before, after = classes[timestamp - 2], classes[timestamp - 1]
            base, z_base = images[-1], latent
            previous = f"t{timestamp - 1}"
            if previous in neighbours:  # the base is what was painted there, not a re-render
                base = np.where(known, neighbours[previous], base)
            keep = before == after
            unchanged, hold = change_maps(
                masks[timestamp - 2], masks[timestamp - 1], size, self.options.schedule
            )
            if self.options.exemplars:
                base, filled = self._exemplar_fill(
                    block, timestamp, base, valid, before, after, bank_zoom
                )
                if filled.any():
                    # Exemplars are held like unchanged roads and buildings: copied until the
                    # last steps, which harmonize them; released at i_change, the model would
                    # repaint them in its own idea of the class (a bank exemplar's above all).
                    keep |= filled
                    z_base = self._encode(base, pad)
                    exemplar = to_latent(self._padded(filled, pad), size)
                    unchanged = torch.maximum(unchanged, exemplar)
                    hold = torch.maximum(hold, exemplar)
            z_base = _now(z_base)
            z_a, pin, name = z_base, None, f"t{timestamp}"
            if name in neighbours:
                anchor_mask = self._anchor_mask(known, pad)
                painted = self._encode(fill_unknown(neighbours[name], known), pad)
                z_a, unchanged, pin = anchor(z_a, unchanged, painted, anchor_mask)
            latent = self._sample(block, timestamp, z_a, unchanged, hold, masks[timestamp - 1], pin)
            decoded = self._decode(latent, pad, height, width)
            if self.options.composition == "pixel":
                # land of no known class is kept too: unknown is not changed
                weight = blend_weight(keep & has_pixels)
                base_decoded = self._decode(z_base, pad, height, width)
                rgb = compose(base, decoded, base_decoded, weight)
            else:
                rgb = to_uint8(decoded)
            if name in neighbours:
                rgb = level_to_neighbours(rgb, neighbours[name], known)
            images.append(rgb)
            valid = has_pixels = np.ones_like(valid1)  # painted images hold data everywhere
        return images, valid1

    def _exemplar_fill(
        self,
        block: Block,
        timestamp: int,
        rgb: np.ndarray,
        valid: np.ndarray,
        before: np.ndarray,
        after: np.ndarray,
        bank_zoom: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``exemplar_fill`` with this block's own draws, its place in the region (so that
        repeated bank textures continue across blocks) and the run's seed."""
        rng = np.random.default_rng(block_seed(self.seed, block, timestamp))
        origin = (int(block.window.row_off), int(block.window.col_off))
        return exemplar_fill(
            rgb, valid, before, after, rng, self.bank, origin=origin, seed=self.seed, zoom=bank_zoom
        )

    def _paint_t1(
        self,
        block: Block,
        mask: torch.Tensor,
        t1: np.ndarray,
        pad: tuple[int, int, int, int],
        neighbours: dict[str, np.ndarray],
        known: np.ndarray,
        bank_zoom: float,
    ) -> tuple[Latent, np.ndarray]:
        """Latents and RGB of t1 where no real image is given.

        With exemplars, t1 starts as a collage of the bank's real crops and roofs laid on the
        land cover (``exemplar_fill`` from an empty image), which the model harmonizes like
        any exemplar and which then stands in for a real t1; without, it is plain conditional
        generation: nothing unchanged, so the mixing rule never copies.
        """
        height, width = t1.shape
        size = (mask.shape[-2] // self.f, mask.shape[-1] // self.f)
        drawn = torch.zeros((1, 1, *size), device=self.device)
        z_a = torch.zeros((1, self.model.config.latent_channels, *size), device=self.device)
        base = filled = None
        if self.options.exemplars and self.bank is not None:
            empty = np.zeros((3, height, width), np.uint8)
            nothing = np.full(t1.shape, NODATA, t1.dtype)
            base, filled = self._exemplar_fill(
                block, T1, empty, nothing != NODATA, nothing, t1, bank_zoom
            )
            if "t1" in neighbours:
                base, filled = np.where(known, neighbours["t1"], base), filled | known
            z_a = self._encode(base, pad)
            drawn = to_latent(self._padded(filled, pad), size)
        hold, pin = drawn, None
        if "t1" in neighbours:
            anchor_mask = self._anchor_mask(known, pad)
            painted = self._encode(fill_unknown(neighbours["t1"], known), pad)
            z_a, drawn, pin = anchor(z_a, drawn, painted, anchor_mask)
        latent = self._sample(block, T1, z_a, drawn, hold, mask, pin)
        decoded = self._decode(latent, pad, height, width)
        if base is not None and self.options.composition == "pixel":
            weight = blend_weight(filled)
            rgb = compose(base, decoded, self._decode(z_a, pad, height, width), weight)
            latent = partial(self._encode, rgb, pad)  # from here on, t1 is like a real image
        else:
            rgb = to_uint8(decoded)
        if "t1" in neighbours:
            rgb = level_to_neighbours(rgb, neighbours["t1"], known)
        return latent, rgb

    def _encode(self, rgb: np.ndarray, pad: tuple[int, int, int, int]) -> torch.Tensor:
        """Latents of an RGB uint8 (3, h, w) window, padded like the class windows."""
        pixels = torch.from_numpy(rgb).float()[None] / 127.5 - 1.0
        return self._tiled(self.model.encode, F.pad(pixels, pad).to(self.device), 1 / self.f)

    def _anchor_mask(self, known: np.ndarray, pad: tuple[int, int, int, int]) -> torch.Tensor:
        """(1, 1, h, w): the latent pixels whose image pixels are all painted.

        None are left free at the edge of the painted area: a free band there would break the
        continuity the pin is for, right at the core border.
        """
        painted = F.pad(torch.from_numpy(known).float()[None, None], pad)
        return (F.avg_pool2d(painted, self.f) == 1).float().to(self.device)

    def _sample(
        self,
        block: Block,
        timestamp: int,
        z_a: torch.Tensor,
        unchanged: torch.Tensor,
        hold: torch.Tensor,
        classes: torch.Tensor,
        pin: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Latents for ``classes`` on the fused tile canvas; ``z_a`` anchors where unchanged,
        and for good where ``pin`` is 1 (a halo on painted neighbours)."""
        seed = block_seed(self.seed, block, timestamp)
        generator = torch.Generator().manual_seed(seed)
        mask = one_hot(classes)
        f, opts, model = self.f, self.options, self.model

        def denoise_tiles(tiles: torch.Tensor, t: torch.Tensor, windows: list) -> torch.Tensor:
            crops = [
                mask[..., r.start * f : r.stop * f, c.start * f : c.stop * f] for r, c in windows
            ]
            window_masks = crops[0] if len(crops) == 1 else torch.cat(crops)  # cat copies one too
            tic = time.perf_counter()
            out = model.denoise(tiles, t, window_masks, opts.guidance)
            self.model_s += time.perf_counter() - tic
            self.windows += len(windows)
            if self.on_windows is not None:
                self.on_windows(len(windows))
            return out

        height, width = z_a.shape[-2:]
        windows = latent_windows(height, width, opts.tile_size // f, opts.overlap // f)
        denoise = canvas_denoise(denoise_tiles, windows, opts.batch_size, opts.overlap // f)
        start, fraction = None, self._start_fraction(bool(unchanged.any()))
        if model.config.layout_init:
            layout_generator = torch.Generator(self.device).manual_seed(seed ^ 0x1A10)
            layout = model.layout_latent(classes, layout_generator)
            # Unchanged land starts from t1 so the copy rule has something to keep.
            start = unchanged * z_a + (1 - unchanged) * layout
        with torch.no_grad():
            return sample_change(
                denoise,
                self.scheduler(),
                z_a,
                unchanged,
                hold,
                generator,
                opts.steps,
                opts.schedule,
                opts.eta,
                pin=pin,
                start_latent=start,
                start_fraction=fraction,
            )

    def _start_fraction(self, keeps_land: bool) -> float:
        """Where in the schedule sampling starts: 0 (pure noise) unless the model starts from
        the layout. With land kept, no later than the earliest ``i_change``, so that land is
        copied and then re-textured from mid noise as the paper's rule has it."""
        config = self.model.config
        if not config.layout_init:
            return 0.0
        fraction = min(config.layout_start_fraction, 0.99)
        return min(fraction, self.options.schedule.change_start) if keeps_land else fraction

    def block_windows(self, block: Block, timestamps: int, real_t1: bool) -> int:
        """Tile windows the UNet runs to paint ``block`` at ``timestamps`` timestamps (t1 too
        unless it is a real image): every window of its latent canvas at every step that runs,
        for progress and ``--dry-run``. Each image after t1 is taken to keep some land (not
        every pixel changed)."""
        steps = self.options.steps

        def run(keeps_land: bool) -> int:
            return steps - first_step(self._start_fraction(keeps_land), steps)

        collage = self.options.exemplars and self.bank is not None
        first = 0 if real_t1 else run(collage)
        return self._canvas_windows(block) * (first + (timestamps - 1) * run(True))

    def _padding(self, block: Block) -> tuple[int, int, int, int]:
        """(left, right, top, bottom) pixels that pad ``block``'s window to whole latent cells
        and UNet levels. The leading pad puts latent cells on the grid's multiples of f, so
        block borders (multiples of 512) fall between latent cells and a painted neighbour
        covers whole cells."""
        unit, window = pad_multiple(self.model), block.window
        top, left = int(window.row_off) % self.f, int(window.col_off) % self.f
        height, width = int(window.height), int(window.width)
        return (left, -(left + width) % unit, top, -(top + height) % unit)

    def _canvas_windows(self, block: Block) -> int:
        """Tile windows over ``block``'s window padded as ``paint_block`` pads it: the UNet's
        per step, and the autoencoder's per encoding or decoding."""
        left, right, top, bottom = self._padding(block)
        rows = (top + int(block.window.height) + bottom) // self.f
        cols = (left + int(block.window.width) + right) // self.f
        opts = self.options
        return len(latent_windows(rows, cols, opts.tile_size // self.f, opts.overlap // self.f))

    def estimate(self, plan: Plan, timestamps: int, real_t1: bool) -> dict:
        """The paint pass of ``plan`` in figures, for ``--dry-run``: its tile windows and
        about how long it takes here. One batch of windows through the UNet and one tile
        through the encoder and the decoder are timed on this device (each after an untimed
        call that warms it up); each image is taken to cost ``ENCODINGS`` and ``DECODINGS`` of
        its canvas, and the rest of the painting ``REST_PER_MODEL_S`` of that."""
        opts, f, config = self.options, self.f, self.model.config
        side = opts.tile_size // f
        latents = torch.zeros((opts.batch_size, config.latent_channels, side, side))
        classes = torch.zeros((opts.batch_size, opts.tile_size, opts.tile_size), dtype=torch.long)
        pixels = torch.zeros((1, 3, opts.tile_size, opts.tile_size))
        latents, masks = latents.to(self.device), one_hot(classes).to(self.device)
        pixels = pixels.to(self.device)

        def seconds(call: Callable[[], torch.Tensor]) -> float:
            call()
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            tic = time.perf_counter()
            call()
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            return time.perf_counter() - tic

        with torch_threads(opts.threads), self.autocast(), torch.no_grad():
            window_s = seconds(lambda: self.model.denoise(latents, 500, masks, opts.guidance))
            window_s /= opts.batch_size
            tile_s = ENCODINGS * seconds(lambda: self.model.encode(pixels))
            tile_s += DECODINGS * seconds(lambda: self.model.decode(latents[:1]))
        windows = sum(self.block_windows(block, timestamps, real_t1) for block in plan.blocks())
        images = timestamps - real_t1
        tiles = sum(self._canvas_windows(block) for block in plan.blocks()) * images
        return {
            "tile_windows": windows,
            "estimate_s": round((windows * window_s + tiles * tile_s) * (1 + REST_PER_MODEL_S), 1),
            "timed_on": f"{self.device.type}, {opts.threads or torch.get_num_threads()} threads"
            if self.device.type == "cpu"
            else str(self.device),
        }

    def _tiled(
        self, code: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, scale: float
    ) -> torch.Tensor:
        """Encode or decode tile window by tile window, blended over the overlaps.

        The autoencoders attend over the whole input, so a whole block at once would not fit.
        """
        height, width = x.shape[-2:]
        tile_size, overlap = self.options.tile_size, self.options.overlap
        if scale > 1:  # the input is a latent
            tile_size, overlap = tile_size // self.f, overlap // self.f
        windows = latent_windows(height, width, tile_size, overlap)
        weights = window_weights(windows, height, width, overlap)
        out = None
        norm = torch.zeros((round(height * scale), round(width * scale)), device=x.device)
        for (rows, cols), weight in zip(windows, weights, strict=True):
            part = code(x[..., rows, cols])
            if out is None:
                out = torch.zeros((*part.shape[:2], *norm.shape), device=x.device)
            up = F.interpolate(weight[None, None], size=part.shape[-2:], mode="nearest")[0, 0]
            target = (
                slice(round(rows.start * scale), round(rows.stop * scale)),
                slice(round(cols.start * scale), round(cols.stop * scale)),
            )
            out[..., target[0], target[1]] += up.to(x.device) * part
            norm[target[0], target[1]] += up.to(x.device)
        return out / norm

    def _decode(
        self, latents: torch.Tensor, pad: tuple[int, int, int, int], height: int, width: int
    ) -> np.ndarray:
        """Decoded pixels (3, height, width), float on the 0-255 scale, padding cut off."""
        image = self._tiled(self.model.decode, latents, self.f)
        image = image[0, :, pad[2] : pad[2] + height, pad[0] : pad[0] + width]
        return ((image.float() + 1.0) * 127.5).cpu().numpy()

    def _padded(self, pixels: np.ndarray, pad: tuple[int, int, int, int]) -> torch.Tensor:
        """A (h, w) map as a (1, H, W) tensor padded like the class windows (with zeros)."""
        return F.pad(torch.from_numpy(pixels.astype(np.uint8))[None], pad).to(self.device)


class _WindowProgress:
    """Progress of the paint pass in tile windows. Blocks painted here tick as the UNet runs
    their windows; a block is topped up to its planned count when it comes back (all at once
    from a Dask worker), so the bar moves smoothly and ends exactly at its total."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.planned = self.ticked = 0

    def begin(self, planned: int, job: BlockJob) -> BlockJob:
        """``job``, noted as the block painted next here (jobs are made just before they run)."""
        self.planned, self.ticked = planned, 0
        return job

    def tick(self, windows: int) -> None:
        step = min(windows, self.planned - self.ticked)
        if step > 0:
            self.ticked += step
            self.reporter.advance(step)

    def end(self, planned: int) -> None:
        """A block of ``planned`` windows is painted; ticks counted only for a block painted
        here, and a Dask run never ticks."""
        self.reporter.advance(max(planned - self.ticked, 0))
        self.ticked = 0


def _now(latent: Latent) -> torch.Tensor:
    """``latent``, encoded now if it was left for later."""
    return latent() if callable(latent) else latent


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def fill_unknown(rgb: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``rgb`` (3, h, w) with each pixel outside ``known`` set to the nearest known pixel.

    The encoder sees far beyond one latent cell: unpainted (black) pixels next to the painted
    neighbours would darken the very latents the halo is pinned on, and leave a dark line
    along every block border.
    """
    if known.all() or not known.any():
        return rgb
    _, (rows, cols) = ndimage.distance_transform_edt(~known, return_indices=True)
    return rgb[:, rows, cols]


LEVEL_BAND = 32
"""Pixels over which a block's core fades its offset from the painted neighbours to zero."""
LEVEL_SIGMA = 1.0
"""Gaussian sigma (pixels) that keeps texture out of the offset, leaving only its level."""


def level_to_neighbours(rgb: np.ndarray, painted: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``rgb`` with its smooth offset from the ``painted`` neighbours (where ``known``) carried
    into the unpainted part and faded out over ``LEVEL_BAND`` pixels.

    The halo is pinned on the neighbours' re-encoded pixels, and the autoencoder's round trip
    is lossy, so the decoded halo differs from what was painted by a few grey levels: without
    this the difference shows as a line along the block border.
    """
    if known.all() or not known.any():
        return rgb
    weight = known.astype(np.float32)
    norm = ndimage.gaussian_filter(weight, LEVEL_SIGMA)
    offset = (painted.astype(np.float32) - rgb) * weight
    offset = np.stack([ndimage.gaussian_filter(o, LEVEL_SIGMA) for o in offset])
    offset = offset / np.maximum(norm, 1e-3)
    distance, (rows, cols) = ndimage.distance_transform_edt(~known, return_indices=True)
    fade = np.clip(1.0 - distance / LEVEL_BAND, 0.0, 1.0) * ~known
    leveled = rgb + offset[:, rows, cols] * fade
    return leveled.round().clip(0, 255).astype(np.uint8)


def painted_mask(plan: Plan, block: Block, done: set[tuple[int, int]]) -> np.ndarray:
    """Where ``block``'s window holds cores of the ``done`` blocks (a halo reaches only the
    eight neighbours, being at most half a block)."""
    window = block.window
    r0, c0 = int(window.row_off), int(window.col_off)
    known = np.zeros((int(window.height), int(window.width)), bool)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if (block.row + dr, block.col + dc) not in done:
                continue
            core = plan.block(block.row + dr, block.col + dc).core
            rows = slice(
                max(int(core.row_off) - r0, 0), max(int(core.row_off + core.height) - r0, 0)
            )
            cols = slice(
                max(int(core.col_off) - c0, 0), max(int(core.col_off + core.width) - c0, 0)
            )
            known[rows, cols] = True
    return known


def model_info(folder: Path, model: SemanticLDM) -> dict:
    """What ``run.json`` records of the model: where it is, its preset and its hash."""
    return {
        "path": str(folder.absolute()),
        "preset": model.config.name,
        "sha256": model_hash(folder),
    }


def open_painter(model: str, options: SamplingOptions, seed: int, device: str) -> Painter:
    """The painter of model ``default`` or a model folder, with the spec that Dask workers
    build the same painter from."""
    folder = resolve_model(model)
    loaded = load_model(folder)
    info = model_info(folder, loaded)
    options = with_precision(options, pick_device(device))
    name = model if model == "default" else str(folder.absolute())
    spec = PainterSpec(name, info["sha256"], json.dumps(options.to_dict()), seed, device)
    return Painter(
        loaded,
        options,
        seed,
        pick_device(device),
        model_info=info,
        spec=spec,
        bank=load_bank(folder),
    )

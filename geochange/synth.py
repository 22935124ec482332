"""``synth``: the change maps of ``simulate`` plus the t1/t2 images painted by the model.

The passes of a ``geochange.run.Run`` with the image pass of ``geochange.painting``: scan,
events, change maps, chained timestamps, paint, finish.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from geochange.distributed import Scheduler
from geochange.grid import ImageOnGrid
from geochange.painting import SamplingOptions, open_painter
from geochange.report import Reporter
from geochange.run import DEFAULT_BLOCK, Result, Run

if TYPE_CHECKING:
    from geochange.inputs import Inputs


def synthesize(
    inputs: Inputs,
    output: str | Path,
    *,
    model: str | Path = "default",
    image: str | Path | None = None,
    options: SamplingOptions | None = None,
    seed: int = 0,
    device: str = "auto",
    timestamps: int = 2,
    overwrite: bool = False,
    creation_options: dict[str, str] | None = None,
    block_size: int = DEFAULT_BLOCK,
    reporter: Reporter | None = None,
    scheduler: Scheduler | None = None,
    resume: bool = False,
    preview: bool = False,
) -> Result:
    """The change maps of ``simulate`` plus the painted images: what ``geochange synth`` runs.

    ``model`` is ``default`` (the model shipped with geochange) or a model folder; ``image`` a
    real RGB image of the region that becomes t1; ``preview`` adds ``preview.png``.
    ``scheduler`` and ``resume`` as in ``simulate``.
    """
    options = options or SamplingOptions()
    if options.threads is None:
        distributed = scheduler is not None and scheduler.distributed
        options = replace(options, threads=1 if distributed else torch.get_num_threads())
    reporter = reporter or Reporter()
    painter = open_painter(str(model), options, seed, device)
    warning = painter.model.config.gsd_warning(inputs.grid.pixel_size_m())
    if warning:
        reporter.warning(warning)
    run = Run(
        inputs.with_image(image),
        output,
        seed=seed,
        overwrite=overwrite,
        resume=resume,
        creation_options=creation_options,
        block_size=block_size,
        timestamps=timestamps,
        reporter=reporter,
        scheduler=scheduler,
        images=painter,
    )
    with ExitStack() as stack:
        if image is not None:
            painter.image = ImageOnGrid(image, inputs.grid)
            stack.callback(painter.image.close)
        return synth_passes(run, preview)


def synth_passes(run: Run, preview: bool = False) -> Result:
    """The passes of ``synth`` in order on a ``run`` made with an image pass (``images``)."""
    with run:
        run.scan()
        run.events()
        run.change_maps()
        run.chain()
        run.paint()
        return run.finish(preview=preview)

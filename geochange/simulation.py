"""``simulate``: land cover in, simulated change events, georeferenced change maps out.

The passes of a ``geochange.run.Run`` without the image pass: scan, events, change maps,
chained timestamps, finish. Each pass streams over the blocks of the plan, holding one window
in memory; intermediate rasters live in raw scratch files inside the partial output folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from geochange.distributed import Scheduler
from geochange.report import Reporter
from geochange.run import DEFAULT_BLOCK, Result, Run

if TYPE_CHECKING:
    from geochange.inputs import Inputs


def simulate(
    inputs: Inputs,
    output: str | Path,
    *,
    seed: int = 0,
    overwrite: bool = False,
    creation_options: dict[str, str] | None = None,
    block_size: int = DEFAULT_BLOCK,
    reporter: Reporter | None = None,
    timestamps: int = 2,
    scheduler: Scheduler | None = None,
    resume: bool = False,
) -> Result:
    """Simulate the events on the inputs and write the change maps to folder ``output``.

    ``timestamps`` > 2 chains fresh events on each land cover (t3, t4, ...), written as
    ``tN_landcover.tif``. ``scheduler`` runs the block tasks (default: this process).
    ``resume`` continues a killed run into the same ``output``.
    """
    run = Run(
        inputs,
        output,
        seed=seed,
        overwrite=overwrite,
        resume=resume,
        creation_options=creation_options,
        block_size=block_size,
        timestamps=timestamps,
        reporter=reporter,
        scheduler=scheduler,
    )
    with run:
        run.scan()
        run.events()
        run.change_maps()
        run.chain()
        return run.finish()

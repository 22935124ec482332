"""How long-running work tells its caller about progress and warnings.

Library code calls a ``Reporter``; the CLI decides whether that becomes a progress bar, log lines
or JSON lines for programs such as the QGIS plugin.
"""

from __future__ import annotations

import logging

log = logging.getLogger("geochange")


class Reporter:
    """Default reporter: warnings and stage changes go to the ``geochange`` logger."""

    def stage(self, name: str, total: int, unit: str = "block") -> None:
        """A stage of ``total`` steps starts; a step is one ``unit`` (a block, a tile window)."""
        log.info("%s (%d %ss)", name, total, unit)

    def advance(self, steps: int = 1) -> None:
        """``steps`` more steps of the current stage are done."""

    def warning(self, message: str) -> None:
        log.warning(message)

    def close(self) -> None:
        """The work is over (finished or failed)."""

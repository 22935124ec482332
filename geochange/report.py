"""How long-running work tells its caller about progress and warnings.

Library code calls a ``Reporter``; the CLI decides whether that becomes a progress bar, log lines
or JSON lines for programs such as the QGIS plugin.
"""

from __future__ import annotations

import logging

log = logging.getLogger("geochange")


class Reporter:
    """Default reporter: warnings and stage changes go to the ``geochange`` logger."""

    def stage(self, name: str, total: int) -> None:
        """A stage of ``total`` steps starts."""
        log.info("%s (%d steps)", name, total)

    def advance(self, steps: int = 1) -> None:
        """``steps`` more steps of the current stage are done."""

    def warning(self, message: str) -> None:
        log.warning(message)

    def close(self) -> None:
        """The work is over (finished or failed)."""

"""Errors a user can fix. The CLI prints them without a traceback and exits with status 2.

Messages are written once, naming options as the command line spells them (``--gsd``); a
Python caller reads them with the parameter names of the Python API instead (``gsd=``), so
nobody is told to use a flag they do not have. (The QGIS plugin renames them to its dialog
fields.)
"""

from __future__ import annotations

import re

FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)")
"""A long command-line option inside a message."""
PYTHON_SPELLING = {
    "co": "creation_options=",
    "overwrite": "overwrite=True",
    "resume": "resume=True",
    "preview": "preview=True",
    "dry-run": "dry_run=True",
    "exemplars": "exemplars=True",
    "no-exemplars": "exemplars=False",
}
"""Options whose Python spelling is not just the name with ``_`` for ``-`` and an ``=``."""


def in_python_terms(text: str) -> str:
    """``text`` with each ``--option`` named as the Python API's parameter."""
    return FLAG.sub(lambda m: PYTHON_SPELLING.get(m[1], m[1].replace("-", "_") + "="), text)


class InputError(Exception):
    """Bad input: says what is wrong and how to fix it."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(problem if fix is None else f"{problem}\n  How to fix: {fix}")

    def in_cli_terms(self) -> str:
        """The message as the command line prints it."""
        return super().__str__()

    def __str__(self) -> str:
        return in_python_terms(self.in_cli_terms())

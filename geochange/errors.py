"""Errors a user can fix. The CLI prints them without a traceback and exits with status 2."""

from __future__ import annotations


class InputError(Exception):
    """Bad input: says what is wrong and how to fix it."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(problem if fix is None else f"{problem}\n  How to fix: {fix}")

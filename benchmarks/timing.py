"""The timer the benchmarks wrap functions in (imported by the scripts beside it)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any


def timed(
    function: Callable,
    totals: dict[str, float],
    name: str,
    synchronize: Callable[[], None] | None = None,
) -> Callable:
    """``function``, adding the seconds each call takes to ``totals[name]``. ``synchronize``
    (``torch.cuda.synchronize``) runs before and after, so queued GPU work is charged to it."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if synchronize:
            synchronize()
        tic = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            if synchronize:
                synchronize()
            totals[name] = totals.get(name, 0.0) + time.perf_counter() - tic

    return wrapper

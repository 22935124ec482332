"""Where blocks are computed: in this process, in forked processes on this machine's cores
(numpy work), or as tasks on a Dask cluster.

Passes hand a ``Scheduler`` a function and a stream of work items and get the results back in
the items' order, so the caller alone reads and writes files (one writer, whatever the number
of workers) and writes in the same order as a single-process run, which keeps outputs
byte-identical. Items are read lazily and only a few are in flight at once, so memory stays
bounded by the number of workers, not by the size of the region.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from geochange.errors import InputError

Item = TypeVar("Item")
Output = TypeVar("Output")

_worker_cache: dict[Hashable, Any] = {}


def worker_cached(key: Hashable, factory: Callable[[], Output]) -> Output:
    """``factory()`` made once per process (per Dask worker) and kept: models load once."""
    if key not in _worker_cache:
        _worker_cache[key] = factory()
    return _worker_cache[key]


class Scheduler:
    """Runs a function over work items here (``client`` None) or on a Dask cluster."""

    def __init__(self, spec: str = "local", client: Any = None, cluster: Any = None) -> None:
        self.spec = spec
        self.client = client
        self.cluster = cluster

    @property
    def distributed(self) -> bool:
        return self.client is not None

    @property
    def workers(self) -> int:
        if self.client is None:
            return 1
        return max(len(self.client.scheduler_info()["workers"]), 1)

    def imap(
        self,
        function: Callable[[Item], Output],
        items: Iterable[Item],
        *,
        forked: bool = False,
        threads: int = 1,
    ) -> Iterator[Output]:
        """``function(item)`` for every item, yielded in the items' order.

        On a cluster at most two items per worker are submitted ahead of the one being waited
        for; ``function`` must then be picklable (a module-level function or a partial of one).
        ``forked``: without a cluster, run the items in forked processes, one per core of this
        machine, instead of one after another here: for numpy work, which holds the GIL between
        array operations. Never for torch, whose thread pool a fork does not carry over.
        ``threads``: without a cluster, run the items in that many threads of this process;
        ``function`` must then be safe to run in several threads at once.
        """
        if self.client is not None:
            submit = partial(self.client.submit, pure=False)
            yield from in_order(submit, function, items, 2 * self.workers)
            return
        if threads > 1:
            with ThreadPoolExecutor(threads) as pool:
                yield from in_order(pool.submit, function, items, 2 * threads)
            return
        cores = available_cores()
        if not forked or cores < 2 or "fork" not in multiprocessing.get_all_start_methods():
            yield from map(function, items)
            return
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(cores, mp_context=context, initializer=_leave_ctrl_c) as pool:
            yield from in_order(pool.submit, function, items, 2 * cores)

    def describe(self) -> dict:
        return {"spec": self.spec, "workers": self.workers}

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def __enter__(self) -> Scheduler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def available_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


def _leave_ctrl_c() -> None:
    """In a forked worker: Ctrl-C reaches the whole process group, but only the parent acts on
    it (it stops the pool and cleans up); a worker would only print a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def in_order(
    submit: Callable[..., Any],
    function: Callable[[Item], Output],
    items: Iterable[Item],
    ahead: int,
) -> Iterator[Output]:
    """Results of ``submit(function, item)`` futures in the items' order, with at most
    ``ahead`` items submitted beyond the one waited for (so memory stays bounded)."""
    pending: deque = deque()
    try:
        for item in items:
            pending.append(submit(function, item))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def open_scheduler(spec: str | None) -> Scheduler:
    """``None`` or ``local``: this process; ``local:N``: a new cluster of N worker processes on
    this machine; ``tcp://HOST:PORT``: the running Dask scheduler there (its workers need
    geochange installed and, for ``--model`` folders, the same path readable)."""
    if spec in (None, "", "local"):
        return Scheduler()
    import dask
    from dask.distributed import Client, LocalCluster

    # Importing distributed sets its loggers to INFO; they follow geochange's verbosity instead
    # (the CLI's -v/-q), so a quiet run stays quiet.
    logging.getLogger("distributed").setLevel(logging.getLogger("geochange").getEffectiveLevel())

    if spec.startswith("local:"):
        count = spec.removeprefix("local:")
        if not count.isdigit() or int(count) < 1:
            raise InputError(
                f"--scheduler {spec}: the number of workers must be a positive integer",
                "write e.g. --scheduler local:4",
            )
        # Dask makes workers trim freed memory at 64 KiB, which turns every large torch
        # allocation into an mmap and page faults: keep glibc's default. One thread each, so N
        # workers use N cores. Its HTTP server starts even without a dashboard (it took
        # 127.0.0.1:8787): it serves nothing and takes a free port on this machine only; the
        # cluster talks over 127.0.0.1 alone.
        settings = {
            "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
            "distributed.scheduler.http.routes": [],
            "distributed.worker.http.routes": [],
        }
        with dask.config.set(settings):
            cluster = LocalCluster(
                n_workers=int(count),
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                silence_logs=logging.ERROR,
            )
        return Scheduler(spec, Client(cluster), cluster)
    if spec.startswith("tcp://"):
        try:
            client = Client(spec, timeout=20)
        except OSError as error:
            raise InputError(
                f"--scheduler {spec}: no Dask scheduler answers there ({error})",
                "start one (dask scheduler; dask worker ADDRESS) or check the address",
            ) from error
        return Scheduler(spec, client)
    raise InputError(
        f"--scheduler {spec!r} is not understood",
        "use local (this process, the default), local:N (N worker processes) or tcp://HOST:PORT",
    )

"""Run work that is not safe across threads in worker processes, one job per process at once.

Article extraction (trafilatura over lxml) shares parser state between threads: run from
the collection's thread pool it crashed the whole interpreter now and then (``double free
or corruption``, segmentation faults). In a process pool each worker runs one job at a
time, so two extractions never share a process, and a native crash kills one worker, not
the collection.

When a worker dies, every job that pool was running fails with BrokenProcessPool, not only
the one that crashed it. So the pool is replaced for the jobs to come, and a job that saw
the break runs again alone, in a process of its own: an innocent page then succeeds, and
the page that kills its process fails (BrokenProcessPool again) for the caller to report.

Workers start by ``forkserver``, never by ``fork``: forking a process that runs threads
copies locks other threads hold. The fork server imports ``preload`` once, so each new
worker starts warm.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

T = TypeVar("T")


class Isolated:
    """A lazily started, self-replacing process pool of ``workers`` (default: the cores)."""

    def __init__(self, *, workers: int = 0, preload: Sequence[str] = ()) -> None:
        self.workers = workers if workers > 0 else (os.cpu_count() or 1)
        self._context = multiprocessing.get_context("forkserver")
        if preload:
            self._context.set_forkserver_preload(list(preload))
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self.restarts = 0  # pools replaced after a worker died (for tests and health)

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=self._context)
            return self._pool

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is broken:  # once, however many threads saw the break
                self._pool = None
                self.restarts += 1
        broken.shutdown(wait=False, cancel_futures=True)

    def run(self, fn: Callable[..., T], /, *args: object) -> T:
        """``fn(*args)`` in a worker process; BrokenProcessPool when this job kills it.

        ``fn`` must be a module-level function and its arguments picklable.
        """
        for _ in range(2):
            pool = self._current()
            try:
                future = pool.submit(fn, *args)
            except (BrokenProcessPool, RuntimeError):  # broken, or shut down by a restart
                self._replace(pool)
                continue
            try:
                return future.result()
            except BrokenProcessPool:
                self._replace(pool)
                break
        # A worker died with this job in the pool, perhaps through another job: alone in a
        # process of its own, only this job can be the cause.
        with ProcessPoolExecutor(1, mp_context=self._context) as alone:
            return alone.submit(fn, *args).result()

    def close(self) -> None:
        """Stop the workers (a later ``run`` starts new ones)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

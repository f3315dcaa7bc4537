"""Keeping CPython's cyclic garbage collector off work that cannot find garbage.

Decoding 20,000 cached stories, or scoring them, allocates hundreds of thousands of small
objects in a burst. Each 700 allocations trigger a young-generation pass, and every few
of those a full pass over the whole heap (all the stories already made): about a fifth of
a 1,000-source warm build went there, finding nothing, since these objects hold no
reference cycles. Reference counting still frees everything at once; only the search for
cycles waits until the block ends.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection inside the block; the collector's state is restored after it
    (a block inside another, or under a caller that disabled it, leaves it disabled)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def fresh_only() -> Iterator[None]:
    """Collections inside the block look only at objects made inside it.

    Everything alive at the start (modules, the source cache just read, an earlier run's
    stories) is set aside (``gc.freeze``) and handed back at the end, where any garbage
    among it is found by the next full collection. Unlike ``paused``, cycles made inside
    the block (HTTP clients make some per request) are still freed as it goes.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def pausing(func: Callable[P, R]) -> Callable[P, R]:
    """``func`` runs with the collector paused (see ``paused``)."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with paused():
            return func(*args, **kwargs)

    return wrapper

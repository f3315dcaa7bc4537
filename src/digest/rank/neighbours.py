"""Pure candidate search for event grouping: which pairs of stories to compare, and how alike.

Only pairs whose headlines share a selective key (``digest.rank.terms``) are candidates: a
key carried by more than BLOCK_MAX_DF of the stories proposes none, and only stories
published within the window of each other are compared, so 20,000 stories never make a
dense 20,000 x 20,000 matrix. Teasers count in the similarity, never in the candidates: two
teasers alike in their boilerplate ("Read more from our science desk") do not make two
stories one event.

In a large batch each story's candidates are first ranked by the key weight they share
with it (a sparse product, done a block of stories at a time so that the products stay
small enough to sit in the processor's cache) and only its SHORTLIST best are scored by
the exact cosine over every term: scoring every one of a million candidate pairs would cost
more than all the rest. Of the scored pairs, each story keeps its NEIGHBOURS most similar.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from digest.models import Story

BLOCK_MAX_DF = 0.005  # keys in more than this share of stories propose no candidates
BLOCK_MIN_DF = 40  # ... unless the batch is small (then every key may)
ROWS = 2048  # stories whose candidates are found at once
CHUNK = 16_384  # candidate pairs scored at once
SHORTLIST = 16  # candidates per story scored exactly, by shared key weight, in large batches
SHORTLIST_FROM = 2000  # stories in a batch from which the shortlist applies
NEIGHBOURS = 7  # most similar stories each story is compared with
FLOOR = 0.05  # candidate pairs less similar than this are treated as unrelated
# Coverage of one event comes within hours: a pair's similarity halves every day apart.
TIME_HALF_LIFE_HOURS = 24.0


def candidate_pairs(
    stories: Sequence[Story], matrix: Any, keys: Any, *, window: timedelta
) -> tuple[Any, Any, Any]:
    """Pairs ``(i, j)``, ``i < j``, of ``stories`` published within ``window`` of each other,
    with their similarity (the cosine of their rows of ``matrix``, halved for every
    TIME_HALF_LIFE_HOURS between them) when it is at least FLOOR and the pair is among the
    NEIGHBOURS most similar of either story: three arrays, of the ``i`` (ascending), the
    ``j`` and the similarities. ``keys`` is the story x key matrix of ones."""
    import numpy as np

    n = matrix.shape[0]
    stamps = np.array([s.published.timestamp() for s in stories])
    rows, cols = _shortlist(stamps, keys, window=window)
    if not len(rows):
        return rows, cols, np.zeros(0)
    # The exact cosine over every term, common ones included, for candidates only, a
    # slice at a time (the rows of a million pairs at once would not fit).
    exact = np.empty(len(rows))
    for at in range(0, len(rows), CHUNK):
        r, c = rows[at : at + CHUNK], cols[at : at + CHUNK]
        exact[at : at + CHUNK] = np.asarray(matrix[r].multiply(matrix[c]).sum(axis=1)).ravel()
    return nearest(rows, cols, exact, stamps, n)


def nearest(rows: Any, cols: Any, cosine: Any, stamps: Any, n: int) -> tuple[Any, Any, Any]:
    """Of the candidate pairs ``(rows[k], cols[k])`` with their ``cosine``, those whose
    similarity (halved for every TIME_HALF_LIFE_HOURS between the stories' ``stamps``) is
    at least FLOOR and among the NEIGHBOURS greatest of either story, with it."""
    import numpy as np

    exact = cosine * 0.5 ** (np.abs(stamps[rows] - stamps[cols]) / 3600 / TIME_HALF_LIFE_HOURS)
    some = exact >= FLOOR
    rows, cols, exact = rows[some], cols[some], exact[some]
    both = _top(np.concatenate([rows, cols]), np.concatenate([exact, exact]), n, NEIGHBOURS)
    keep = both[: len(rows)] | both[len(rows) :]
    return rows[keep], cols[keep], exact[keep]


def key_weights(df: Any, n: int) -> Any:
    """The weight of each key in a batch of ``n`` stories, by how many carry it (``df``):
    its idf (a rarer shared key says more), 0 for a key of one story or one too common to
    propose candidates (in more than BLOCK_MAX_DF of the stories)."""
    import numpy as np

    cap = max(BLOCK_MIN_DF, int(BLOCK_MAX_DF * n))
    return np.where((df <= cap) & (df > 1), np.log((1 + n) / (1 + df)), 0.0)


def _shortlist(stamps: Any, keys: Any, *, window: timedelta) -> tuple[Any, Any]:
    """The candidate pairs ``(i, j)``, ``i < j``, of the stories published at ``stamps``,
    row-major: in a batch of SHORTLIST_FROM stories or more, those among the SHORTLIST of
    either story that share the most key weight with it."""
    import numpy as np
    from scipy.sparse import diags

    n = keys.shape[0]
    none = np.zeros(0, dtype=np.int64)
    if n < 2 or keys.nnz == 0:
        return none, none
    weights = key_weights(np.bincount(keys.indices, minlength=keys.shape[1]), n)
    selective = np.flatnonzero(weights)
    block = (keys[:, selective] @ diags(weights[selective])).tocsr()
    across = block.T.tocsr()
    timed = np.ptp(stamps) > window.total_seconds()  # a day's batch never needs the check
    limit = SHORTLIST if n >= SHORTLIST_FROM else 0
    found: list[Any] = []
    for low in range(0, n, ROWS):
        # Whole rows: story ``low + k``'s candidates, on both sides of it.
        shares = (block[low : low + ROWS] @ across).tocsr()
        mine = np.repeat(np.arange(shares.shape[0]), np.diff(shares.indptr))
        other = shares.indices
        ok = (other != mine + low) & (shares.data > 0)
        if timed:
            ok &= np.abs(stamps[mine + low] - stamps[other]) <= window.total_seconds()
        mine, other, shared = mine[ok], other[ok], shares.data[ok]
        if limit:
            best = _top(mine, shared, shares.shape[0], limit)
            mine, other = mine[best], other[best]
        mine += low
        found.append(np.minimum(mine, other) * np.int64(n) + np.maximum(mine, other))
    pairs = np.unique(np.concatenate(found))  # each pair once, found from both sides
    return pairs // n, pairs % n


def _top(mine: Any, values: Any, n: int, k: int) -> Any:
    """Which entries are among the ``k`` greatest ``values`` (none below 0) of their story
    ``mine`` (0 <= mine < n); of equal values the earlier entry ranks first."""
    import numpy as np

    keep = np.zeros(len(values), dtype=bool)
    if not len(values):
        return keep
    if n <= 1 << 16:
        # Two stable radix sorts on 16-bit keys, the value (in 65,536 steps, greatest
        # first) and then the story, cost a fifth of one float sort of a million entries.
        top = max(float(values.max()), 1e-12)
        steps = ((top - values) * (65535 / top)).astype(np.uint16)
        order = np.argsort(steps, kind="stable")
        order = order[np.argsort(mine[order].astype(np.uint16), kind="stable")]
    else:
        order = np.lexsort((-values, mine))
    ranked = mine[order]
    starts = np.searchsorted(ranked, np.arange(n))
    keep[order[np.arange(len(order)) - starts[ranked] < k]] = True
    return keep

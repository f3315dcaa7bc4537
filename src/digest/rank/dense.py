"""Event grouping's candidate pairs for a small batch, in plain numpy arrays.

An edition's ranking groups the events of a few hundred stories (``ranking.event_pool``);
there the same terms, weights, candidates and neighbours as ``digest.rank.neighbours`` fit
in small dense matrices, and a build is spared importing scipy (a sixth of a second of CPU,
more than the grouping itself). Only terms and keys that two stories share get a column: a
story's own terms still count in its vector's length, never in a product.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from digest.models import Story
from digest.rank.neighbours import key_weights, nearest
from digest.rank.terms import Pairs, term_pairs

DENSE_MAX = 1000  # stories up to which the dense arrays are the quicker (and smaller) way


def candidate_pairs(stories: Sequence[Story], *, window: timedelta) -> tuple[Any, Any, Any]:
    """What ``neighbours.candidate_pairs`` gives for ``stories`` (fewer than
    SHORTLIST_FROM of them, so every candidate is scored), computed densely."""
    import numpy as np

    n = len(stories)
    none = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0))
    if n < 2:
        return none
    terms, keys = term_pairs(stories)
    vectors = _unit_vectors(terms, n)
    row, col, _ = keys.counted()
    weights = key_weights(np.bincount(col, minlength=keys.shape[1]), n)
    block = _columns(row, col, weights[col], weights > 0, n)
    rows, cols = np.triu_indices(n, 1)
    found = (block @ block.T)[rows, cols] > 0
    rows, cols = rows[found], cols[found]
    stamps = np.array([s.published.timestamp() for s in stories])
    if np.ptp(stamps) > window.total_seconds():
        near = np.abs(stamps[rows] - stamps[cols]) <= window.total_seconds()
        rows, cols = rows[near], cols[near]
    if not len(rows):
        return none
    cosine = (vectors @ vectors.T)[rows, cols]
    return nearest(rows.astype(np.int64), cols.astype(np.int64), cosine, stamps, n)


def _unit_vectors(terms: Pairs, n: int) -> Any:
    """The stories' TF-IDF vectors (as ``terms.weighted``), only the shared terms' columns."""
    import numpy as np

    row, col, counts = terms.counted()
    df = np.bincount(col, minlength=terms.shape[1])
    weight = (1 + np.log(counts)) * np.log((1 + n) / (1 + df[col]))
    norms = np.sqrt(np.bincount(row, weight * weight, minlength=n))
    norms[norms == 0] = 1
    return _columns(row, col, weight / norms[row], df > 1, n)


def _columns(row: Any, col: Any, value: Any, kept: Any, n: int) -> Any:
    """An ``n`` x (columns ``kept``) array holding ``value`` at ``(row, col)``."""
    import numpy as np

    where = np.cumsum(kept) - 1
    out = np.zeros((n, int(kept.sum())))
    mine = kept[col]
    out[row[mine], where[col[mine]]] = value[mine]
    return out

"""Pure event grouping: stories from any sources about the same real-world event.

Each story becomes one sparse TF-IDF vector of its headline and teaser: its words, their
stems, and its names and figures counted again (``digest.rank.terms``). Two stories are
similar by the cosine of their vectors.

Only some pairs are compared: those that share a rare enough word and were published
within ``window`` of each other (``digest.rank.neighbours``). Groups are then formed by
average-link agglomeration over that sparse graph: two groups merge when the mean
similarity over every pair of their stories (a missing pair counts as 0) is at least
``threshold``. Unlike single-link, one ambiguous pair cannot chain two unrelated events
together: the whole of each group has to resemble the whole of the other.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import Any

from digest.models import Story
from digest.rank import dense
from digest.rank.neighbours import candidate_pairs
from digest.rank.terms import term_counts, weighted

ROUND_MERGES = 50  # fewer merges than this in a vectorised round: the heap does the rest
SUMMED_BY_SORT = 50_000  # graph entries up to which numpy sums a round's duplicates


def group_events(
    stories: Sequence[Story],
    *,
    threshold: float,
    window: timedelta,
    keep: Collection[str] = (),
    apart: Collection[frozenset[str]] = (),
    joined: Collection[tuple[str, str]] = (),
) -> list[list[int]]:
    """Indices of ``stories`` grouped by event, each group in input order, groups ordered
    by their first story. ``threshold`` 0 groups nothing.

    The editor's word beats the similarity: two stories whose URLs are both in ``keep``
    (pins, the editor's order) never end up in one group, the stories of a set of URLs in
    ``apart`` (a split) never group with any story outside it, and the groups of the two
    URLs of a pair in ``joined`` (a merge) become one.
    """
    n = len(stories)
    if threshold > 0 and n > 1:
        if n <= dense.DENSE_MAX:  # an edition's pool: numpy alone
            found = dense.candidate_pairs(stories, window=window)
        else:
            terms, keys = term_counts(stories)
            found = candidate_pairs(stories, weighted(terms), keys, window=window)
        side = {url: k for k, urls in enumerate(apart) for url in urls}
        groups = _average_link(
            n,
            *found,
            threshold,
            pinned=[s.url in keep for s in stories],
            sides=[side.get(s.url, -1) for s in stories],
        )
    else:
        groups = [[i] for i in range(n)]
    return _join(stories, groups, joined) if joined else groups


def _join(
    stories: Sequence[Story], groups: list[list[int]], joined: Collection[tuple[str, str]]
) -> list[list[int]]:
    where = {stories[i].url: g for g, members in enumerate(groups) for i in members}
    parent = list(range(len(groups)))

    def root(g: int) -> int:
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    for a, b in joined:
        if a in where and b in where:
            ra, rb = root(where[a]), root(where[b])
            parent[max(ra, rb)] = min(ra, rb)
    merged: dict[int, list[int]] = {}
    for g, members in enumerate(groups):
        merged.setdefault(root(g), []).extend(members)
    return [sorted(members) for members in merged.values()]


def average_link(
    n: int,
    pairs: dict[tuple[int, int], float],
    threshold: float,
    *,
    pinned: Sequence[bool],
    sides: Sequence[int],
    round_merges: int = ROUND_MERGES,
) -> list[list[int]]:
    """Average-link agglomeration of ``n`` items over the sparse similarities ``pairs``.

    The best pair of groups merges first, while the mean similarity between them (missing
    pairs count as 0) is at least ``threshold``; ties break on the lowest indices, so the
    result depends only on the input. Two groups that both hold a pinned item never merge,
    nor two groups on different ``sides`` (-1: any side; an editor's split sets the rest).

    Most merges are made in vectorised rounds: two groups that are each other's most
    similar mergeable neighbour are merged by the one-at-a-time agglomeration too, sooner
    or later (average link is reducible: a union is never more similar to a third group
    than the better of its parts, and mergeability is kept by unions too), so every such
    pair merges at once. When a round merges only a few pairs, the rest is left to the
    one-at-a-time heap, which is then small.
    """
    import numpy as np

    ends = np.array(list(pairs), dtype=np.int64).reshape(-1, 2)
    values = np.fromiter(pairs.values(), dtype=float, count=len(pairs))
    return _average_link(
        n,
        ends[:, 0],
        ends[:, 1],
        values,
        threshold,
        pinned=pinned,
        sides=sides,
        round_merges=round_merges,
    )


def _average_link(
    n: int,
    first: Any,
    second: Any,
    values: Any,
    threshold: float,
    *,
    pinned: Sequence[bool],
    sides: Sequence[int],
    round_merges: int = ROUND_MERGES,
) -> list[list[int]]:
    """``average_link`` over the pairs ``(first[k], second[k])`` of similarity ``values[k]``
    (numpy arrays, each pair once)."""
    import numpy as np

    label = np.arange(n)  # item -> its group
    size: Any = np.ones(n)  # items per group (float: the divisor of the sums)
    pin = np.array(pinned, dtype=bool)
    side = np.array(sides, dtype=np.int64)
    # Both directions of each pair, so that a row's entries are all of its group's links.
    rows = np.concatenate([first, second])
    cols = np.concatenate([second, first])
    sums = np.concatenate([values, values])
    groups = n
    while len(rows):
        mean = sums / (size[rows] * size[cols])
        ok = (mean >= threshold) & ~(pin[rows] & pin[cols]) & (side[rows] == side[cols])
        if not ok.any():
            rows = cols = rows[:0]  # nothing left to merge: the heap has nothing to do
            break
        r, c = rows[ok], cols[ok]
        order = np.lexsort((c, -mean[ok], r))  # by group, best first, lowest index on ties
        r, c = r[order], c[order]
        first = np.ones(len(r), dtype=bool)
        first[1:] = r[1:] != r[:-1]
        best = np.full(groups, -1)
        best[r[first]] = c[first]
        mine = np.arange(groups)
        mutual = (best > mine) & (best[np.maximum(best, 0)] == mine)
        if mutual.sum() < round_merges:
            # A few merges a round: the heap is quicker for the rest. A group with no
            # mergeable pair now never merges (no union comes closer to it, and pins and
            # sides only add up), so its pairs cannot matter and stay out of the heap.
            active = np.zeros(groups, dtype=bool)
            active[r] = True
            live = active[rows] & active[cols]
            rows, cols, sums = rows[live], cols[live], sums[live]
            break
        survives = np.ones(groups, dtype=bool)
        survives[best[mutual]] = False
        into = np.arange(groups)
        into[best[mutual]] = mine[mutual]  # the lower index survives: its first story's place
        into = (np.cumsum(survives) - 1)[into]
        groups = int(survives.sum())
        label = into[label]
        size = np.bincount(into, weights=size, minlength=groups)
        pin = np.bincount(into, weights=pin, minlength=groups) > 0
        side = side[survives]  # both of a merged pair are on one side
        rows, cols = into[rows], into[cols]
        apart = rows != cols
        rows, cols, sums = _summed(rows[apart], cols[apart], sums[apart], groups)
    merged = (
        np.arange(groups)
        if not len(rows)
        else _heap(
            size.astype(int).tolist(),
            dict(zip(zip(rows.tolist(), cols.tolist(), strict=True), sums.tolist(), strict=True)),
            threshold,
            pin.tolist(),
            side.tolist(),
        )
    )
    out: dict[int, list[int]] = {}
    final = np.array(merged)[label].tolist() if n else []
    for item, group in enumerate(final):
        out.setdefault(group, []).append(item)
    return [out[g] for g in sorted(out)]


def _summed(rows: Any, cols: Any, values: Any, n: int) -> tuple[Any, Any, Any]:
    """The entries of an ``n`` x ``n`` sparse matrix with duplicates added up."""
    import numpy as np

    if len(rows) <= SUMMED_BY_SORT:  # a small graph: numpy alone, sparing scipy's import
        codes, inverse = np.unique(rows * n + cols, return_inverse=True)
        return codes // n, codes % n, np.bincount(inverse, weights=values)
    from scipy.sparse import coo_matrix

    matrix = coo_matrix((values, (rows, cols)), shape=(n, n)).tocsr()
    matrix.sum_duplicates()
    found = matrix.tocoo()
    return found.row.astype(np.int64), found.col.astype(np.int64), found.data


def _heap(
    size: list[int],
    links_in: dict[tuple[int, int], float],
    threshold: float,
    holds_pin: list[bool],
    side: list[int],
) -> list[int]:
    """The one-at-a-time agglomeration of groups of ``size`` items with summed similarities
    ``links_in`` (both directions): each group's final group, the lowest index of its own."""
    n = len(size)
    links: list[dict[int, float]] = [{} for _ in range(n)]  # group -> summed similarity
    heap: list[tuple[float, int, int]] = []
    for (i, j), total in links_in.items():
        links[i][j] = total
        mean = total / (size[i] * size[j])
        if i < j and mean >= threshold:
            heap.append((-mean, i, j))
    heapq.heapify(heap)
    into = list(range(n))
    alive = [True] * n
    while heap:
        negative, a, b = heapq.heappop(heap)
        if not (alive[a] and alive[b]) or (holds_pin[a] and holds_pin[b]) or side[a] != side[b]:
            continue
        current = links[a].get(b, 0.0) / (size[a] * size[b])
        if abs(current + negative) > 1e-12:
            continue  # stale: one of the two has grown since this entry was pushed
        # The survivor is the lower index, so the group keeps its first story's place.
        a, b = min(a, b), max(a, b)
        alive[b] = False
        into[b] = a
        size[a] += size[b]
        holds_pin[a] = holds_pin[a] or holds_pin[b]
        for c, value in links[b].items():
            if c == a:
                continue
            del links[c][b]
            total = links[a].get(c, 0.0) + value
            links[a][c] = links[c][a] = total
        links[a].pop(b, None)
        links[b] = {}
        for c, total in links[a].items():
            mean = total / (size[a] * size[c])
            if mean >= threshold:
                heapq.heappush(heap, (-mean, min(a, c), max(a, c)))
    for g in range(n):  # survivors have lower indices, so theirs are final already
        into[g] = into[into[g]]
    return into

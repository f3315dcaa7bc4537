"""Pure event grouping: stories from any sources about the same real-world event.

Each story becomes one sparse TF-IDF vector of its headline and teaser, three views weighted
and joined: words (and word pairs), character n-grams inside words (so that inflections
still meet, and languages written without spaces have terms at all), and the names and
numbers in it (capitalised words, figures: the strongest sign that two headlines tell one
event). Two stories are similar by the cosine of their vectors.

Candidates come from a sparse product restricted to the selective terms (the commonest are
left out of the product only; they still count in the similarity), and only stories
published within ``window`` of each other are compared, so 20,000 stories never make a
dense 20,000 x 20,000 matrix. Groups are then formed by average-link agglomeration over
that sparse graph: two groups merge when the mean similarity over every pair of their
stories (a missing pair counts as 0) is at least ``threshold``. Unlike single-link, one
ambiguous pair cannot chain two unrelated events together: the whole of each group has to
resemble the whole of the other.
"""

from __future__ import annotations

import heapq
import itertools
import re
import unicodedata
from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import Any

from digest.models import Story

PREFIX = 5  # letters of a long word kept as its stem
TEASER_CHARS = 300  # a teaser's first sentences say what happened; the rest is detail
BLOCK_MAX_DF = 0.005  # terms in more than this share of stories propose no candidates
BLOCK_MIN_DF = 40  # ... unless the batch is small (then every term may)
CHUNK = 200_000  # candidate pairs scored at once
NEIGHBOURS = 5  # most similar stories each story is compared with
FLOOR = 0.05  # candidate pairs less similar than this are treated as unrelated
# Coverage of one event comes within hours: a pair's similarity halves every day apart.
TIME_HALF_LIFE_HOURS = 24.0

_WORD = re.compile(r"\w+")
_DIGITS = re.compile(r"(?<=\d)[,.\s](?=\d{3}(?!\d))")
# Scripts written without spaces between words (Han, kana; Hangul too, for its compounds):
# each run becomes its overlapping character pairs, which then serve as its words.
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+")
_KATAKANA = re.compile(r"[\u30a0-\u30ff]{2,}")  # mostly foreign names: Trump, CrowdStrike


def _pairs(match: re.Match[str]) -> str:
    run = match.group()
    pairs = [run] if len(run) < 3 else map("".join, itertools.pairwise(run))
    return " " + " ".join(pairs) + " "


def _spaced(text: str) -> str:
    return _UNSPACED.sub(_pairs, text)


def _text(story: Story) -> str:
    teaser = story.teaser[:TEASER_CHARS]
    return unicodedata.normalize("NFKC", f"{story.title}\n{teaser}" if teaser else story.title)


def _terms(text: str) -> list[str]:
    """The terms of ``text``: its words, casefolded (pairs of characters in unspaced
    scripts); for each long word its first PREFIX letters, a crude stem that lets
    "explodes", "exploded" and "explosion" meet in any language written in Latin letters;
    and again, marked, its names and figures (the strongest sign that two headlines tell one
    event): capitalised words but the first, katakana words (mostly foreign names: Trump,
    CrowdStrike) and numbers, thousands separators dropped ("2,300" meets "2 300")."""
    words = _WORD.findall(_spaced(_DIGITS.sub("", text)))
    out = [w.casefold() for w in words]
    out += [w[:PREFIX] + "~" for w in out if len(w) > PREFIX and w.isalpha()]
    out += ["@" + w.casefold() for w in words[1:] if w[0].isupper() and len(w) > 1]
    out += ["#" + w for w in words if w.isdigit()]
    out += ["@" + k for k in _KATAKANA.findall(text)]
    return out


def _keys(title: str) -> list[str]:
    """What two headlines of one event share, at the least: a word of four letters or more
    or its stem (short words are mostly "the", "of", "and" in some language), a number, or
    a pair of characters of an unspaced script."""
    words = _WORD.findall(_spaced(_DIGITS.sub("", unicodedata.normalize("NFKC", title))))
    out = [w.casefold() for w in words if len(w) > 3 or w.isdigit() or _UNSPACED.match(w)]
    return out + [w[:PREFIX] for w in out if len(w) > PREFIX]


def vectors(stories: Sequence[Story]) -> Any:
    """The row-normalised TF-IDF vectors of ``stories`` (a scipy CSR matrix).

    The weights are sublinear term counts times ``ln((1 + n) / (1 + df))``: without the
    customary ``+ 1`` a term that every story carries weighs nothing, so in a batch of a
    dozen stories "story" or "news" shared by all makes no two of them alike.
    """
    # Imported here: scikit-learn takes a noticeable moment to import, and most commands
    # never group events.
    import numpy as np
    from scipy.sparse import csr_matrix, diags
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.preprocessing import normalize

    try:
        counts = CountVectorizer(analyzer=_terms).fit_transform([_text(s) for s in stories])
    except ValueError:  # not one term in any story (titles of punctuation only)
        return csr_matrix((len(stories), 1))
    counts = counts.astype(np.float64)
    counts.data = 1 + np.log(counts.data)
    df = np.diff(counts.tocsc().indptr)
    idf = np.log((1 + len(stories)) / (1 + df))
    return normalize(counts @ diags(idf))


def candidate_pairs(
    stories: Sequence[Story], matrix: Any, *, window: timedelta
) -> dict[tuple[int, int], float]:
    """Pairs ``(i, j)``, ``i < j``, published within ``window`` of each other, with their
    similarity (the cosine, halved for every TIME_HALF_LIFE_HOURS between them) when it
    is at least FLOOR.

    Only pairs whose headlines share a selective key are candidates (see ``_keys``): a
    key carried by more than BLOCK_MAX_DF of the stories proposes none. Teasers count in
    the similarity, never in the candidates: two teasers alike in their boilerplate
    ("Read more from our science desk") do not make two stories one event.
    """
    import numpy as np
    from scipy.sparse import triu
    from sklearn.feature_extraction.text import CountVectorizer

    n = matrix.shape[0]
    if n < 2:
        return {}
    try:
        keys = CountVectorizer(analyzer=_keys, binary=True).fit_transform(
            [s.title for s in stories]
        )
    except ValueError:  # not one key in any headline
        return {}
    df = np.diff(keys.tocsc().indptr)
    cap = max(BLOCK_MIN_DF, int(BLOCK_MAX_DF * n))
    block = keys[:, np.flatnonzero(df <= cap)]
    found = triu(block @ block.T, k=1).tocoo()
    rows, cols = found.row, found.col
    stamps = np.array([s.published.timestamp() for s in stories])
    apart = np.abs(stamps[rows] - stamps[cols])
    near = apart <= window.total_seconds()
    rows, cols, apart = rows[near], cols[near], apart[near]
    # The exact cosine over every term, common ones and n-grams included, for candidates
    # only, a slice at a time (the rows of a million pairs at once would not fit).
    exact = np.empty(len(rows))
    for at in range(0, len(rows), CHUNK):
        r, c = rows[at : at + CHUNK], cols[at : at + CHUNK]
        exact[at : at + CHUNK] = np.asarray(matrix[r].multiply(matrix[c]).sum(axis=1)).ravel()
    exact *= 0.5 ** (apart / 3600 / TIME_HALF_LIFE_HOURS)
    some = exact >= FLOOR
    rows, cols, exact = rows[some], cols[some], exact[some]
    keep = _nearest(rows, cols, exact, n)
    return dict(
        zip(
            zip(rows[keep].tolist(), cols[keep].tolist(), strict=True),
            exact[keep].tolist(),
            strict=True,
        )
    )


def _nearest(rows: Any, cols: Any, values: Any, n: int) -> Any:
    """Which pairs are among the NEIGHBOURS most similar of either of their two stories:
    a sparse nearest-neighbour graph, so a story in a crowd of loose likenesses costs
    NEIGHBOURS pairs, not thousands."""
    import numpy as np

    keep = np.zeros(len(values), dtype=bool)
    for mine in (rows, cols):
        # By story, most similar first: similarities are below 1, so one float key does.
        order = np.argsort(mine + (1 - np.clip(values, 0, 1)) * 0.5, kind="stable")
        ranked = mine[order]
        starts = np.searchsorted(ranked, np.arange(n))
        place = np.arange(len(order)) - starts[ranked]
        keep[order[place < NEIGHBOURS]] = True
    return keep


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
        pairs = _connected(n, candidate_pairs(stories, vectors(stories), window=window), threshold)
        side = {url: k for k, urls in enumerate(apart) for url in urls}
        groups = average_link(
            n,
            pairs,
            threshold,
            pinned=[s.url in keep for s in stories],
            sides=[side.get(s.url, -1) for s in stories],
        )
    else:
        groups = [[i] for i in range(n)]
    return _join(stories, groups, joined) if joined else groups


def _connected(
    n: int, pairs: dict[tuple[int, int], float], threshold: float
) -> dict[tuple[int, int], float]:
    """The pairs that can matter to average-link: two groups only merge when some pair
    across them is at least ``threshold``, so a group never leaves its connected component
    of such pairs, and pairs across components (most of them, with thousands of stories)
    are dropped before the agglomeration's slower loop."""
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    strong = [(i, j) for (i, j), value in pairs.items() if value >= threshold]
    if not strong:
        return {}
    rows, cols = np.array(strong).T
    graph = coo_matrix((np.ones(len(strong)), (rows, cols)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    return {(i, j): v for (i, j), v in pairs.items() if label[i] == label[j]}


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
) -> list[list[int]]:
    """Average-link agglomeration of ``n`` items over the sparse similarities ``pairs``.

    The best pair of groups merges first, while the mean similarity between them (missing
    pairs count as 0) is at least ``threshold``; ties break on the lowest indices, so the
    result depends only on the input. Two groups that both hold a pinned item never merge,
    nor two groups on different ``sides`` (-1: any side; an editor's split sets the rest).
    """
    size = [1] * n
    members: list[list[int]] = [[i] for i in range(n)]
    links: list[dict[int, float]] = [{} for _ in range(n)]  # group -> summed similarity
    holds_pin = list(pinned)
    side = list(sides)
    heap: list[tuple[float, int, int]] = []
    for (i, j), value in pairs.items():
        links[i][j] = links[j][i] = value
        if value >= threshold:
            heap.append((-value, i, j))
    heapq.heapify(heap)
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
        size[a] += size[b]
        members[a].extend(members[b])
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
    return [sorted(members[i]) for i in range(n) if alive[i]]

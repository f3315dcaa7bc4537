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
ROUND_MERGES = 50  # fewer merges than this in a vectorised round: the heap does the rest
NEIGHBOURS = 5  # most similar stories each story is compared with
SHORTLIST = 10  # candidates per story scored exactly, by shared key weight, in large batches
FLOOR = 0.05  # candidate pairs less similar than this are treated as unrelated
# Coverage of one event comes within hours: a pair's similarity halves every day apart.
TIME_HALF_LIFE_HOURS = 24.0

_WORD = re.compile(r"\w+")
_DIGITS = re.compile(r"(?<=\d)[,.\s](?=\d{3}(?!\d))")
# Scripts written without spaces between words (Han, kana; Hangul too, for its compounds):
# each run becomes its overlapping character pairs, which then serve as its words.
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+")
_SEP = "\x00"  # parts texts joined for one regex call over them all
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


def _words(text: str) -> list[str]:
    return _WORD.findall(_spaced(_DIGITS.sub("", unicodedata.normalize("NFKC", text))))


def _terms(words: list[str], text: str) -> list[str]:
    """The terms of a text of ``words``: its words, casefolded (pairs of characters in
    unspaced scripts); for each long word its first PREFIX letters, a crude stem that lets
    "explodes", "exploded" and "explosion" meet in any language written in Latin letters;
    and again, marked, its names and figures (the strongest sign that two headlines tell one
    event): capitalised words but the first, katakana words (mostly foreign names: Trump,
    CrowdStrike) and numbers, thousands separators dropped ("2,300" meets "2 300")."""
    out = [w.casefold() for w in words]
    out += [w[:PREFIX] + "~" for w in out if len(w) > PREFIX and w.isalpha()]
    out += ["@" + w.casefold() for w in words[1:] if w[0].isupper() and len(w) > 1]
    out += ["#" + w for w in words if w.isdigit()]
    out += ["@" + k for k in _KATAKANA.findall(text)]
    return out


def _keys(words: list[str]) -> list[str]:
    """What two headlines of one event share, at the least: a word of four letters or more
    or its stem (short words are mostly "the", "of", "and" in some language), a number, or
    a pair of characters of an unspaced script."""
    out = [w.casefold() for w in words if len(w) > 3 or w.isdigit() or _UNSPACED.match(w)]
    return out + [w[:PREFIX] for w in out if len(w) > PREFIX]


def _count(lists: Sequence[list[str]], *, binary: bool) -> Any:
    """A story x term CSR matrix of counts (or of ones) of the terms in ``lists``.

    Built here rather than with scikit-learn's CountVectorizer: importing scikit-learn
    alone costs a second of CPU, more than the whole grouping of 20,000 stories."""
    import numpy as np
    from scipy.sparse import csr_matrix

    flat = list(itertools.chain.from_iterable(lists))
    # Columns in order of first use, looked up by C-level calls: a generator calling
    # ``setdefault`` per term cost a fifth of the grouping.
    vocabulary = {term: k for k, term in enumerate(dict.fromkeys(flat))}
    columns = np.fromiter(map(vocabulary.__getitem__, flat), dtype=np.int32, count=len(flat))
    indptr = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, lists), dtype=np.int64, count=len(lists)), out=indptr[1:])
    matrix = csr_matrix(
        (np.ones(len(flat)), columns, indptr), shape=(len(lists), max(1, len(vocabulary)))
    )
    matrix.sum_duplicates()  # a term twice in one story: its count
    if binary:
        matrix.data[:] = 1
    return matrix


def vectors(stories: Sequence[Story]) -> Any:
    """The row-normalised TF-IDF vectors of ``stories`` (a scipy CSR matrix).

    The weights are sublinear term counts times ``ln((1 + n) / (1 + df))``: without the
    customary ``+ 1`` a term that every story carries weighs nothing, so in a batch of a
    dozen stories "story" or "news" shared by all makes no two of them alike.
    """
    return _weighted(_count([_story_terms(s)[0] for s in stories], binary=False))


def _all_terms(stories: Sequence[Story]) -> tuple[list[list[str]], list[list[str]]]:
    """``_story_terms`` of every story, the titles and the teasers each normalised and
    rewritten in one call over all of them joined (per story, those calls cost more than
    their work); NUL, which no text keeps, parts them."""
    titles = [s.title for s in stories]
    teasers = [s.teaser[:TEASER_CHARS] for s in stories]
    if any(_SEP in t for t in itertools.chain(titles, teasers)):
        each = [_story_terms(story) for story in stories]
        return [terms for terms, _ in each], [keys for _, keys in each]
    plain = [unicodedata.normalize("NFKC", _SEP.join(texts)) for texts in (titles, teasers)]
    title_words, teaser_words = (
        [_WORD.findall(part) for part in _spaced(_DIGITS.sub("", text)).split(_SEP)]
        for text in plain
    )
    has_katakana = any(_KATAKANA.search(text) for text in plain)
    title_texts, teaser_texts = (text.split(_SEP) for text in plain)
    terms: list[list[str]] = []
    for k, (title, teaser) in enumerate(zip(title_words, teaser_words, strict=True)):
        # The katakana of "title\nteaser" are those of each: no run crosses the line.
        text = f"{title_texts[k]}\n{teaser_texts[k]}" if has_katakana else ""
        terms.append(_terms([*title, *teaser] if teaser else title, text))
    return terms, [_keys(title) for title in title_words]


def _story_terms(story: Story) -> tuple[list[str], list[str]]:
    """A story's terms (headline and teaser) and its headline's keys, from one tokenising
    of each (the two texts are tokenised apart: no word spans the line between them)."""
    title = _words(story.title)
    teaser = story.teaser[:TEASER_CHARS]
    words = [*title, *_words(teaser)] if teaser else title
    text = unicodedata.normalize("NFKC", f"{story.title}\n{teaser}" if teaser else story.title)
    return _terms(words, text), _keys(title)


def _weighted(counts: Any) -> Any:
    import numpy as np
    from scipy.sparse import diags

    n = counts.shape[0]
    counts.data = 1 + np.log(counts.data)
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    idf = np.log((1 + n) / (1 + df))
    matrix = (counts @ diags(idf)).tocsr()
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1
    return diags(1 / norms) @ matrix


def candidate_pairs(
    stories: Sequence[Story], matrix: Any, *, window: timedelta, keys: Any = None
) -> tuple[Any, Any, Any]:
    """Pairs ``(i, j)``, ``i < j``, published within ``window`` of each other, with their
    similarity (the cosine, halved for every TIME_HALF_LIFE_HOURS between them) when it
    is at least FLOOR: three arrays, of the ``i``, the ``j`` and the similarities.

    Only pairs whose headlines share a selective key are candidates (see ``_keys``): a
    key carried by more than BLOCK_MAX_DF of the stories proposes none. Teasers count in
    the similarity, never in the candidates: two teasers alike in their boilerplate
    ("Read more from our science desk") do not make two stories one event. ``keys`` is
    the story x key matrix when the caller has it already.

    In a large batch the exact cosine is computed only for each story's SHORTLIST
    candidates that share the most key weight with it (a cheap sparse product): scoring
    every one of a million candidate pairs would cost more than all the rest.
    """
    import numpy as np
    from scipy.sparse import diags, triu

    n = matrix.shape[0]
    none = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0))
    if n < 2:
        return none
    if keys is None:
        keys = _count([_keys(_words(s.title)) for s in stories], binary=True)
    if keys.nnz == 0:
        return none
    df = np.bincount(keys.indices, minlength=keys.shape[1])
    cap = max(BLOCK_MIN_DF, int(BLOCK_MAX_DF * n))
    selective = (df <= cap) & (df > 1)
    # A rarer shared key says more: weight each by its idf so the shortlist is the best.
    block = keys @ diags(np.where(selective, np.log((1 + n) / (1 + df)), 0.0))
    found = triu(block @ block.T, k=1).tocoo()
    rows, cols, shared = found.row, found.col, found.data
    stamps = np.array([s.published.timestamp() for s in stories])
    apart = np.abs(stamps[rows] - stamps[cols])
    near = (apart <= window.total_seconds()) & (shared > 0)
    rows, cols, shared = rows[near], cols[near], shared[near]
    if len(rows) > SHORTLIST * n:
        keep = _nearest(rows, cols, shared / (1 + shared.max()), n, SHORTLIST)
        rows, cols = rows[keep], cols[keep]
    apart = np.abs(stamps[rows] - stamps[cols])
    # The exact cosine over every term, common ones and n-grams included, for candidates
    # only, a slice at a time (the rows of a million pairs at once would not fit).
    exact = np.empty(len(rows))
    for at in range(0, len(rows), CHUNK):
        r, c = rows[at : at + CHUNK], cols[at : at + CHUNK]
        exact[at : at + CHUNK] = np.asarray(matrix[r].multiply(matrix[c]).sum(axis=1)).ravel()
    exact *= 0.5 ** (apart / 3600 / TIME_HALF_LIFE_HOURS)
    some = exact >= FLOOR
    rows, cols, exact = rows[some], cols[some], exact[some]
    keep = _nearest(rows, cols, exact, n, NEIGHBOURS)
    return rows[keep].astype(np.int64), cols[keep].astype(np.int64), exact[keep]


def _nearest(rows: Any, cols: Any, values: Any, n: int, neighbours: int) -> Any:
    """Which pairs are among the ``neighbours`` most similar of either of their two
    stories: a sparse nearest-neighbour graph, so a story in a crowd of loose likenesses
    costs a few pairs, not thousands."""
    import numpy as np

    keep = np.zeros(len(values), dtype=bool)
    for mine in (rows, cols):
        # By story, most similar first: similarities are below 1, so one float key does.
        # Stories first, by a radix sort when their numbers fit 16 bits; the stable float
        # sort then only meets runs already in order, which it merges quickly.
        first = np.argsort(mine.astype(np.uint16) if n <= 1 << 16 else mine, kind="stable")
        key = mine[first] + (1 - np.clip(values[first], 0, 1)) * 0.5
        order = first[np.argsort(key, kind="stable")]
        ranked = mine[order]
        starts = np.searchsorted(ranked, np.arange(n))
        place = np.arange(len(order)) - starts[ranked]
        keep[order[place < neighbours]] = True
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
        terms, keys = _all_terms(stories)
        matrix = _weighted(_count(terms, binary=False))
        found = candidate_pairs(stories, matrix, window=window, keys=_count(keys, binary=True))
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

"""The terms of stories for event grouping: sparse story x term matrices, built in bulk.

A story's terms are those of its headline and the start of its teaser: its words,
casefolded (pairs of characters in scripts written without spaces); for each long word its
first PREFIX letters, a crude stem that lets "explodes", "exploded" and "explosion" meet in
any language written in Latin letters; and again, marked, its names and figures (the
strongest sign that two headlines tell one event): capitalised words but the first,
katakana words (mostly foreign names: Trump, CrowdStrike) and numbers, thousands
separators dropped ("2,300" meets "2 300").

Its keys, what two headlines of one event share at the least, are the headline's words of
four letters or more and their stems (short words are mostly "the", "of", "and" in some
language), its numbers and its pairs of characters of an unspaced script.

Everything is done once per batch, not per story: one regular-expression pass over every
text joined, each distinct word's terms derived once (a day's news repeats its words), and
the story x term counts formed by a sparse product of story x word counts with word x term
derivations. Per story, the calls alone cost more than 20,000 stories' work.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from digest.models import Story

PREFIX = 5  # letters of a long word kept as its stem
TEASER_CHARS = 300  # a teaser's first sentences say what happened; the rest is detail

_SEP = "\x00"  # parts the texts joined for one regex call over them all; no text keeps it
_TOKEN = re.compile(r"\w+|\x00")
_DIGITS = re.compile(r"(\d)[,.\s](?=\d{3}(?!\d))")  # a digit, then a thousands separator
# Scripts written without spaces between words (Han, kana; Hangul too, for its compounds):
# each run becomes its overlapping character pairs, which then serve as its words.
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+")
_KATAKANA = re.compile(r"[\u30a0-\u30ff]{2,}")  # mostly foreign names: Trump, CrowdStrike


def _pairs(match: re.Match[str]) -> str:
    run = match.group()
    pairs = [run] if len(run) < 3 else map("".join, itertools.pairwise(run))
    return " " + " ".join(pairs) + " "


def _derivations(words: list[str]) -> tuple[Any, Any]:
    """What each distinct word brings, as matrices of ones: its terms (``2 * len(words)``
    rows: row ``k`` for ``words[k]`` anywhere but first in its story, row
    ``len(words) + k`` for it first, where a capital says nothing of a name) and its keys
    (``len(words)`` rows). Built from whole-vocabulary comprehensions: a call per word cost
    more than the rest of the tokenising."""
    v = len(words)
    folded = [w.casefold() for w in words]
    stem = [f[:PREFIX] + "~" if len(f) > PREFIX and f.isalpha() else "" for f in folded]
    pairs = zip(words, folded, strict=True)
    name = ["@" + f if len(w) > 1 and w[0].isupper() else "" for w, f in pairs]
    number = ["#" + w if w.isdigit() else "" for w in words]
    # Not the first word's name: its row in the second half is left out.
    terms = _ones([(folded, 2), (stem, 2), (name, 1), (number, 2)], v)
    key = [
        f if len(w) > 3 or w.isdigit() or _UNSPACED.match(w) else ""
        for w, f in zip(words, folded, strict=True)
    ]
    prefix = [k[:PREFIX] if len(k) > PREFIX else "" for k in key]
    return terms, _ones([(key, 1), (prefix, 1)], v)


def _ones(kinds: list[tuple[list[str], int]], v: int) -> Pairs:
    """A matrix of ones from ``kinds``, each a list of one term per word ("" for none) and
    how many ``v``-row halves it fills; one column per distinct term."""
    import numpy as np

    vocabulary = dict.fromkeys(itertools.chain.from_iterable(terms for terms, _ in kinds))
    vocabulary.pop("", None)
    column = {term: k for k, term in enumerate(vocabulary)}
    rows: list[Any] = []
    cols: list[Any] = []
    for terms, copies in kinds:
        present = np.flatnonzero(np.fromiter(map(bool, terms), dtype=bool, count=v))
        ids = np.fromiter(map(column.__getitem__, filter(None, terms)), np.int64, len(present))
        rows += [present + k * v for k in range(copies)]
        cols += [ids] * copies
    height = v * max(copies for _, copies in kinds)
    return Pairs(np.concatenate(rows), np.concatenate(cols), (height, max(1, len(column))))


@dataclass(frozen=True, slots=True)
class Pairs:
    """A matrix given by its entries of one, ``(row[k], col[k])``; an entry given twice
    counts twice. Kept as arrays until the end, where a large batch makes it a scipy
    sparse matrix and a small one a numpy array (sparing the import of scipy)."""

    row: Any
    col: Any
    shape: tuple[int, int]

    def through(self, other: Pairs) -> Pairs:
        """The entries of the product ``self @ other`` (each row's columns carried through
        ``other``'s rows), duplicates kept."""
        import numpy as np

        order = np.argsort(other.row, kind="stable")
        starts = np.zeros(other.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(other.row, minlength=other.shape[0]), out=starts[1:])
        lengths = starts[self.col + 1] - starts[self.col]
        total = int(lengths.sum())
        # For each entry, its run of ``other``'s row: start + 0, 1, ... length - 1.
        offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        picked = order[np.repeat(starts[self.col], lengths) + offsets]
        return Pairs(
            np.repeat(self.row, lengths), other.col[picked], (self.shape[0], other.shape[1])
        )

    def beside(self, other: Pairs) -> Pairs:
        """``other``'s columns after this one's, row for row."""
        import numpy as np

        return Pairs(
            np.concatenate([self.row, other.row]),
            np.concatenate([self.col, other.col + self.shape[1]]),
            (self.shape[0], self.shape[1] + other.shape[1]),
        )

    def csr(self, *, binary: bool = False) -> Any:
        import numpy as np
        from scipy.sparse import csr_matrix

        matrix = csr_matrix((np.ones(len(self.row)), (self.row, self.col)), shape=self.shape)
        if binary:
            matrix.data[:] = 1
        matrix.sort_indices()  # sparse products and slices skip their own sorting
        return matrix

    def counted(self) -> tuple[Any, Any, Any]:
        """Each distinct entry once, row-major: its row, its column and its count."""
        import numpy as np

        codes, counts = np.unique(self.row * self.shape[1] + self.col, return_counts=True)
        return codes // self.shape[1], codes % self.shape[1], counts


def _pairs_of(lists: Sequence[list[str]]) -> Pairs:
    """The row x term entries of the terms in ``lists`` (row ``k``: ``lists[k]``)."""
    import numpy as np

    flat = list(itertools.chain.from_iterable(lists))
    # Columns in order of first use, looked up by C-level calls.
    vocabulary = {term: k for k, term in enumerate(dict.fromkeys(flat))}
    columns = np.fromiter(map(vocabulary.__getitem__, flat), dtype=np.int64, count=len(flat))
    lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    rows = np.repeat(np.arange(len(lists)), lengths)
    return Pairs(rows, columns, (len(lists), max(1, len(vocabulary))))


def count(lists: Sequence[list[str]], *, binary: bool = False) -> Any:
    """A row x term CSR matrix of counts (or of ones) of the terms in ``lists``.

    Built here rather than with scikit-learn's CountVectorizer: importing scikit-learn
    alone costs a second of CPU, more than the whole grouping of 20,000 stories."""
    return _pairs_of(lists).csr(binary=binary)


def term_pairs(stories: Sequence[Story]) -> tuple[Pairs, Pairs]:
    """The story x term entries of ``stories`` (a term twice in a story: twice) and their
    story x key entries."""
    import numpy as np

    n = len(stories)
    titles = [s.title.replace(_SEP, " ") for s in stories]
    teasers = [s.teaser[:TEASER_CHARS].replace(_SEP, " ") for s in stories]
    # Title and teaser apart (no word spans the line between them), story after story.
    texts = itertools.chain.from_iterable(zip(titles, teasers, strict=True))
    text = unicodedata.normalize("NFKC", _SEP.join(texts))
    spaced, unspaced = _UNSPACED.subn(_pairs, _DIGITS.sub(r"\1", text))
    tokens = _TOKEN.findall(spaced)
    words = list(dict.fromkeys(tokens))
    index = {word: k for k, word in enumerate(words)}
    ids = np.fromiter(map(index.__getitem__, tokens), dtype=np.int64, count=len(tokens))
    # Text k is the tokens between the k-th and the (k+1)-th separator.
    cut = np.flatnonzero(ids == index[_SEP]) if _SEP in index else np.zeros(0, np.int64)
    lengths = np.diff(cut, prepend=-1, append=len(ids)) - 1
    title_length, teaser_length = lengths[0::2], lengths[1::2]
    word_of = np.delete(ids, cut)
    v = len(words)
    story_length = title_length + teaser_length
    story_of = np.repeat(np.arange(n), story_length)
    starts = np.cumsum(story_length) - story_length
    # Each story's first word is counted in the second half of the ``2 * v`` columns,
    # whose terms leave out names (see ``_derivations``).
    columns = word_of.copy()
    columns[starts[story_length > 0]] += v
    derived, keyed = _derivations(words)
    terms = Pairs(story_of, columns, (n, 2 * v)).through(derived)
    if unspaced and _KATAKANA.search(text):  # per story only when some story has any
        names = [
            ["@" + k for k in _KATAKANA.findall(unicodedata.normalize("NFKC", f"{t}\n{e}"))]
            for t, e in zip(titles, teasers, strict=True)
        ]
        terms = terms.beside(_pairs_of(names))
    # The keys, of headlines only: the tokens of each story's title.
    in_title = np.arange(len(word_of)) - np.repeat(starts, story_length)
    in_title = in_title < np.repeat(title_length, story_length)
    heads = Pairs(story_of[in_title], word_of[in_title], (n, v))
    return terms, heads.through(keyed)


def term_counts(stories: Sequence[Story]) -> tuple[Any, Any]:
    """The story x term counts of ``stories`` and their story x key matrix of ones (scipy
    CSR matrices)."""
    from scipy.sparse import csr_matrix

    if not stories:
        return csr_matrix((0, 1)), csr_matrix((0, 1))
    terms, keys = term_pairs(stories)
    return terms.csr(), keys.csr(binary=True)


def weighted(counts: Any) -> Any:
    """Row-normalised TF-IDF of a story x term count matrix.

    The weights are sublinear term counts times ``ln((1 + n) / (1 + df))``: without the
    customary ``+ 1`` a term that every story carries weighs nothing, so in a batch of a
    dozen stories "story" or "news" shared by all makes no two of them alike.
    """
    import numpy as np
    from scipy.sparse import diags

    n = counts.shape[0]
    counts = counts.tocsr()
    counts.eliminate_zeros()
    counts.data = 1 + np.log(counts.data)
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    idf = np.log((1 + n) / (1 + df))
    matrix = (counts @ diags(idf)).tocsr()
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1
    out = (diags(1 / norms) @ matrix).tocsr()
    out.sort_indices()
    return out

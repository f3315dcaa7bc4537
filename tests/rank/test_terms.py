"""The bulk tokeniser of event grouping (one pass over every text, each distinct word's terms
derived once) says exactly what the plain per-story definition says: checked on generated
batches of headlines and teasers in several scripts, with capitals, figures, thousands
separators, katakana names, NUL characters and empty texts. Matrices are compared through
what grouping uses of them (story x story products), so column order does not matter."""

from __future__ import annotations

import itertools
import re
import unicodedata
from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.models import Story
from digest.rank.terms import PREFIX, TEASER_CHARS, count, term_counts, weighted

# The definition, story by story, as it was first written.
WORD = re.compile(r"\w+")
DIGITS = re.compile(r"(?<=\d)[,.\s](?=\d{3}(?!\d))")
UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+")
KATAKANA = re.compile(r"[\u30a0-\u30ff]{2,}")


def _pairs(match: re.Match[str]) -> str:
    run = match.group()
    pairs = [run] if len(run) < 3 else map("".join, itertools.pairwise(run))
    return " " + " ".join(pairs) + " "


def words_of(text: str) -> list[str]:
    return WORD.findall(UNSPACED.sub(_pairs, DIGITS.sub("", unicodedata.normalize("NFKC", text))))


def reference(story: Story) -> tuple[list[str], list[str]]:
    title = words_of(story.title)
    teaser = story.teaser[:TEASER_CHARS]
    words = [*title, *words_of(teaser)] if teaser else title
    text = unicodedata.normalize("NFKC", f"{story.title}\n{teaser}" if teaser else story.title)
    terms = [w.casefold() for w in words]
    terms += [w[:PREFIX] + "~" for w in terms if len(w) > PREFIX and w.isalpha()]
    terms += ["@" + w.casefold() for w in words[1:] if w[0].isupper() and len(w) > 1]
    terms += ["#" + w for w in words if w.isdigit()]
    terms += ["@" + k for k in KATAKANA.findall(text)]
    keys = [w.casefold() for w in title if len(w) > 3 or w.isdigit() or UNSPACED.match(w)]
    keys += [w[:PREFIX] for w in keys if len(w) > PREFIX]
    return terms, keys


PIECES = [
    "Volcano",
    "erupts",
    "near",
    "Reykjavik",
    "airport",
    "closed",
    "the",
    "of",
    "Über",
    "straße",
    "45",
    "ÉLECTIONS",
    "élections",
    "トランプ",
    "大統領",
    "能登半島地震",
    "석유",
    "ｶﾀｶﾅ",
    "COVID19",
    "x",
    "Ab",
    "ß",
    "Москва",
    "заявил",
    "-",
    ",",
    "’s",
    "2,300",
    "2 300",
    "1.000.000",
    "\x00",
    "",
    " ",
]
TEXTS = st.lists(st.sampled_from(PIECES), max_size=12).map(" ".join)


def _story(k: int, title: str, teaser: str) -> Story:
    when = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    return Story(
        url=f"https://n.example/{k}", title=title, teaser=teaser, source="S", published=when
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(TEXTS, TEXTS), min_size=1, max_size=8))
def test_bulk_terms_and_keys_are_the_per_story_definition(texts: list[tuple[str, str]]) -> None:
    stories = [_story(k, title, teaser) for k, (title, teaser) in enumerate(texts)]
    terms, keys = term_counts(stories)
    expected = [reference(s) for s in stories]
    want_terms = count([t for t, _ in expected])
    want_keys = count([k for _, k in expected], binary=True)
    # Same counts of the same terms per story: every story x story product is equal, and
    # so is each story's own term count (the diagonal of a product alone could hide a
    # swapped column).
    assert np.array_equal((terms @ terms.T).toarray(), (want_terms @ want_terms.T).toarray())
    assert np.array_equal(terms.sum(axis=1), want_terms.sum(axis=1))
    assert np.allclose(
        (weighted(terms) @ weighted(terms).T).toarray(),
        (weighted(want_terms) @ weighted(want_terms).T).toarray(),
    )
    assert np.array_equal((keys @ keys.T).toarray(), (want_keys @ want_keys.T).toarray())


def test_no_stories_and_wordless_stories_have_no_terms() -> None:
    terms, keys = term_counts([])
    assert terms.shape[0] == keys.shape[0] == 0
    terms, keys = term_counts([_story(0, "", ""), _story(1, "—", "…"), _story(2, "", "Ab")])
    assert terms.shape[0] == 3
    assert terms[0].nnz == terms[1].nnz == 0
    assert terms[2].nnz == 1  # "ab" only: a story's first word is no name, even in a teaser
    assert keys.nnz == 0

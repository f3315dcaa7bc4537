"""The dense candidate search (an edition's pool, numpy alone) finds the same pairs with the
same similarities as the sparse one (batches over ``DENSE_MAX``): on generated batches, with
the window cutting some pairs, and on the labelled set; and a build's grouping of a pool
never imports scipy."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.models import Story
from digest.rank import dense, neighbours
from digest.rank.terms import term_counts, weighted

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
WINDOW = timedelta(hours=48)
HEADLINES = [
    "Storm floods Wales, rail lines shut",
    "Bank of Japan raises rates for first time in 17 years",
    "Volcano erupts near Reykjavik; airport closed",
    "Apple unveils iPhone and Vision Pro",
    "Earthquake strikes Hokkaido coast, 2,300 homes damaged",
    "OpenAI board fires Altman, Microsoft hires him",
]
WORDS = [word for headline in HEADLINES for word in headline.split()]
EVENTS = Path(__file__).parent / "data" / "events.jsonl"


def _same(stories: list[Story]) -> None:
    terms, keys = term_counts(stories)
    want = neighbours.candidate_pairs(stories, weighted(terms), keys, window=WINDOW)
    got = dense.candidate_pairs(stories, window=WINDOW)
    assert np.array_equal(got[0], want[0])
    assert np.array_equal(got[1], want[1])
    assert np.allclose(got[2], want[2], rtol=1e-9, atol=1e-12)


@st.composite
def batches(draw: st.DrawFn) -> list[Story]:
    n = draw(st.integers(2, 40))
    out = []
    for k in range(n):
        title = " ".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=8)))
        hours = draw(st.sampled_from([0, 1, 5, 30, 72]))  # 72: outside the window
        when = NOW - timedelta(hours=hours)
        out.append(
            Story(url=f"https://n.example/{k}", title=title, teaser="", source="S", published=when)
        )
    return out


@settings(max_examples=150, deadline=None)
@given(batches())
def test_dense_and_sparse_find_the_same_pairs(stories: list[Story]) -> None:
    _same(stories)


def test_dense_and_sparse_agree_on_the_labelled_set() -> None:
    rows = [json.loads(line) for line in EVENTS.read_text(encoding="utf-8").splitlines()]
    stories = [
        Story(
            url=r["url"],
            title=r["title"],
            teaser=r.get("teaser", ""),
            source=r["source"],
            published=datetime.fromisoformat(r["published"]),
        )
        for r in rows
    ]
    assert len(stories) <= dense.DENSE_MAX
    _same(stories)


def test_grouping_an_editions_pool_never_imports_scipy() -> None:
    code = (
        "import sys\n"
        "from datetime import UTC, datetime, timedelta\n"
        "from digest.models import Story\n"
        "from digest.rank import RankingSettings, group\n"
        "now = datetime(2026, 11, 24, 7, tzinfo=UTC)\n"
        "titles = ['Volcano erupts near Reykjavik', 'Reykjavik volcano erupts again',\n"
        "          'Bank of Japan raises rates'] * 400\n"
        "stories = [Story(url=f'https://n.example/{k}', title=f'{t} {k}', teaser='',\n"
        "                 source=f'S{k}', published=now - timedelta(minutes=k))\n"
        "           for k, t in enumerate(titles)]\n"
        "kept = group(stories, settings=RankingSettings(), now=now).stories\n"
        "print(len(stories), len(kept), 'numpy' in sys.modules, 'scipy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    total, kept, numpy_loaded, scipy_loaded = out.stdout.split()
    assert int(kept) < int(total)  # events were grouped
    assert (numpy_loaded, scipy_loaded) == ("True", "False")

"""Ranking through the CLI: --explain, pins and blocks in config, --order, thin days."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.rank import FACTORS
from digest.store import Store
from digest.testing.http import FixtureServer

from conftest import FIXTURES, SUBSCRIBERS, Project, desk_sources

RANKING = FIXTURES / "ranking"
DESK = "https://desk.example.org/"
WIRE = "https://wire.example.com/"
FRESH = 11  # stories in the two fixture feeds younger than the default max_age_hours


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Project]:
    with FixtureServer(RANKING) as server:
        (tmp_path / "subscribers.yaml").write_text(SUBSCRIBERS, encoding="utf-8")
        project = Project(tmp_path, server)
        configure(project)
        yield project


def configure(project: Project, ranking: str = "", **kw: str) -> None:
    sources = desk_sources(project.feeds)
    extra = "ranking:\n" + textwrap.indent(textwrap.dedent(ranking), "  ") if ranking else ""
    project.write_config(sources=sources, extra=extra + kw.get("extra", ""))


def built_stories(project: Project, edition_id: int) -> list[str]:
    store = Store(project.state)
    try:
        return [s.url for s in store.get_edition(edition_id).stories]
    finally:
        store.close()


def build(project: Project, *args: str) -> int:
    result = project.cli("build", "--json", *args)
    assert result.exit_code == 0, result.output
    return int(json.loads(result.stdout)["id"])


def test_preview_explain_lists_every_candidate_with_each_factor(desk: Project) -> None:
    result = desk.cli("preview", "--explain", "--out", str(desk.root / "p"))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "score = recency x source x coverage x section x keywords" in out
    header = next(line for line in out.splitlines() if line.lstrip().startswith("pos"))
    assert all(factor in header for factor in FACTORS)
    assert "12 candidates: 11 kept, 1 dropped" in out
    assert "dropped: older than 72 h (ranking.max_age_hours) | " + DESK + "science-old" in out
    assert out.count("kept: score") == FRESH
    assert "; lead | " in out
    for slug in ("world-summit", "tech-chips", "culture-film", "science-old"):
        assert DESK + slug in out


def test_build_explain_prints_and_stores_the_explanation(desk: Project) -> None:
    configure(desk, "max_stories: 4\n")
    result = desk.cli("build", "--explain")
    assert result.exit_code == 0, result.output
    assert "12 candidates: 4 kept, 8 dropped" in result.stdout
    assert result.stdout.count("dropped: over the limit of 4 stories (ranking.max_stories)") == 7
    assert "edition 1 built" in result.stdout
    again = desk.cli("preview", "1", "--explain", "--out", str(desk.root / "p"))
    assert again.exit_code == 0, again.output
    assert "12 candidates: 4 kept, 8 dropped" in again.stdout
    data = json.loads(desk.cli("build", "--json", "--explain").stdout)
    # Second build: the first edition was never sent, so the same stories are candidates.
    assert [set(c["factors"]) for c in data["explain"]] == [set(FACTORS)] * 12
    assert sum(c["kept"] for c in data["explain"]) == 4


def test_pins_and_blocks_in_config_change_the_edition(desk: Project) -> None:
    plain = built_stories(desk, build(desk))
    assert plain[0] == WIRE + "wire-markets"  # the freshest story leads by score
    assert DESK + "science-old" not in plain
    configure(
        desk,
        f"""\
        pins:
          - url: {DESK}science-old?utm_source=rss
            position: 1
        block_urls: [{DESK}world-border]
        block_sources: [wire]
        block_patterns: [horoscope]
        """,
    )
    stories = built_stories(desk, build(desk))
    assert stories[0] == DESK + "science-old"  # pinned: in, at position 1, though too old
    assert DESK + "world-border" not in stories
    assert DESK + "sport-horoscope" not in stories
    assert not [u for u in stories if u.startswith(WIRE)]
    assert len(stories) == len(plain) - 4 + 1


def test_boost_and_bury_reorder(desk: Project) -> None:
    configure(desk, "boost:\n  comet: 50\nbury:\n  /^markets/: 0.01\n")
    stories = built_stories(desk, build(desk))
    assert stories[0] == DESK + "science-comet"
    assert stories.index(WIRE + "wire-markets") > 0


def test_manual_order_wins_over_the_score(desk: Project) -> None:
    order = f"{DESK}culture-film,{DESK}tech-phones"
    stories = built_stories(desk, build(desk, "--order", order))
    assert stories[:2] == [DESK + "culture-film", DESK + "tech-phones"]
    assert len(stories) == FRESH


def test_manual_order_with_an_unknown_url_fails_and_stores_nothing(desk: Project) -> None:
    result = desk.cli("build", "--order", "https://nowhere.example/x")
    assert result.exit_code == 1
    assert "--order: https://nowhere.example/x is not among today's stories" in result.output
    assert "no editions yet" in desk.cli("status").stdout
    bad = desk.cli("build", "--order", "ftp://x")
    assert bad.exit_code == 1
    assert "is not an http(s) URL" in bad.output


def test_thin_day_skip_stores_nothing_and_exits_3(desk: Project) -> None:
    configure(desk, "max_age_hours: 1\nmin_stories: 5\nthin_day_policy: skip\n")
    result = desk.cli("build", "--explain")
    assert result.exit_code == 3, result.output
    assert "no edition built: thin day: 4 stories, fewer than ranking.min_stories (5)" in (
        result.stderr
    )
    assert "candidates: 4 kept" in result.stdout
    assert "no editions yet" in desk.cli("status").stdout
    as_json = json.loads(desk.cli("build", "--json").stdout)
    assert as_json["thin_day"] is True
    assert as_json["id"] is None


def test_thin_day_skip_with_no_story_at_all(desk: Project) -> None:
    configure(desk, "max_age_hours: 0.01\nthin_day_policy: skip\n")
    result = desk.cli("build")
    assert result.exit_code == 3
    assert "no stories to send" in result.stderr


def test_thin_day_send_builds_with_a_note_for_the_template(desk: Project) -> None:
    templates = desk.root / "templates"
    templates.mkdir()
    # Only the text template is overridden: it shows what the context carries.
    (templates / "digest.txt.j2").write_text(
        "THIN={{ extra.thin_day }} {{ stories | length }}\n"
        "{{ recipient.unsubscribe_url }}\n{{ publication.postal_address }}\n",
        encoding="utf-8",
    )
    configure(
        desk,
        "max_age_hours: 1\nmin_stories: 5\nthin_day_policy: send\n",
        extra="templates_dir: templates\n",
    )
    result = desk.cli("build", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert any(w.startswith("thin day: 4 stories") for w in data["warnings"])
    preview = desk.cli("preview", str(data["id"]), "--out", str(desk.root / "p"))
    assert preview.exit_code == 0, preview.output
    assert (desk.root / "p" / f"edition-{data['id']}.txt").read_text().startswith("THIN=True 4")
    store = Store(desk.state)
    try:
        built = store.ranking(data["id"])
    finally:
        store.close()
    assert built is not None
    assert built[1] == {"thin_day": True}


def test_no_thin_day_note_on_a_normal_day(desk: Project) -> None:
    data = json.loads(desk.cli("build", "--json").stdout)
    assert not [w for w in data["warnings"] if w.startswith("thin day")]


def test_missing_pin_is_a_warning(desk: Project) -> None:
    configure(desk, "pins: [https://gone.example.org/story]\n")
    result = desk.cli("build")
    assert result.exit_code == 0, result.output
    assert (
        "warning: ranking.pins: https://gone.example.org/story is not among today's stories"
        in result.stderr
    )


@pytest.mark.parametrize(
    ("ranking", "key", "message"),
    [
        ("boost:\n  '/([a/': 2\n", "'/([a/'", "is not a valid regular expression"),
        ("bury:\n  sport: 3\n", "sport", "a bury factor must be between 0 and 1"),
        ("boost:\n  sport: 0.5\n", "sport", "(use ranking.bury for 0.5)"),
        ("pins:\n  - url: https://a.example/x\n    position: 40\n", "position", "past max"),
        ("pins: [ftp://a.example/x]\n", "pins", "is not an http(s) URL"),
        ("pins: [https://a.example/x]\nblock_urls: [https://a.example/x]\n", "pins", "both"),
        ("thin_day_policy: maybe\n", "thin_day_policy", "must be skip or send"),
        ("min_stories: 20\n", "min_stories", "between 0 and max_stories"),
        ("section_quotas:\n  world: -1\n", "world", "must be a number of 0 or more"),
        ("section_quotas:\n  world: 1.5\n", "world", "whole number"),
        ("diversity: 2\n", "diversity", "between 0 (off) and 1"),
        ("events: 1.5\n", "events", "is a similarity between 0 (off) and 1"),
        ("events: -0.1\n", "events", "must be a positive number"),
        ("event_window_hours: 0\n", "event_window_hours", "must be a positive number"),
        ("event_pool: -1\n", "event_pool", "must be 0 (every story) or more"),
        ("block_sources: [3]\n", "block_sources", "must be a non-empty string"),
        ("half_life_hours: 0\n", "half_life_hours", "must be a positive number"),
    ],
)
def test_bad_ranking_config_names_file_and_line(
    desk: Project, ranking: str, key: str, message: str
) -> None:
    configure(desk, ranking)
    lines = desk.config.read_text().splitlines()
    line_no = next(
        i for i, line in enumerate(lines, 1) if line.strip().lstrip("- ").startswith(key)
    )
    result = desk.cli("check")
    assert result.exit_code == 1
    assert f"{desk.config}:{line_no}: ranking." in result.output
    assert message in result.output

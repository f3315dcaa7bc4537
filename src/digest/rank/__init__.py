"""Pure ranking: score, filter, select, order and explain candidates; its settings."""

from __future__ import annotations

from digest.rank.score import (
    FACTORS,
    Ranking,
    choose,
    group,
    rank,
    score,
    selected,
    thin_day_message,
)
from digest.rank.settings import Pin, RankingSettings, Rule, check_ranking, compile_pattern

__all__ = [
    "FACTORS",
    "Pin",
    "Ranking",
    "RankingSettings",
    "Rule",
    "check_ranking",
    "choose",
    "compile_pattern",
    "group",
    "rank",
    "score",
    "selected",
    "thin_day_message",
]

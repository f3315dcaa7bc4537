"""Configuration: digest.yaml located and validated into frozen settings (one schema)."""

from __future__ import annotations

from digest.config.load import load_settings
from digest.config.settings import (
    DEFAULT_CONFIG,
    ApprovalSettings,
    BackendSettings,
    EditorSettings,
    EmailSettings,
    NoticeSettings,
    ScheduleSettings,
    SendSettings,
    Settings,
    SourceSettings,
)
from digest.http import FetchSettings
from digest.models import Publication
from digest.rank.settings import RankingSettings

__all__ = [
    "DEFAULT_CONFIG",
    "ApprovalSettings",
    "BackendSettings",
    "EditorSettings",
    "EmailSettings",
    "FetchSettings",
    "NoticeSettings",
    "Publication",
    "RankingSettings",
    "ScheduleSettings",
    "SendSettings",
    "Settings",
    "SourceSettings",
    "load_settings",
]

"""The version of digest (one place, imported by the package and by the HTTP client)."""

from __future__ import annotations

__version__ = "0.2.0"

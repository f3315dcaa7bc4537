"""The web side of digest: editors' review pages and the one-click unsubscribe endpoint."""

from __future__ import annotations

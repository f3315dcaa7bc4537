"""Sources: one module per kind of input (feeds, pages...)."""

from __future__ import annotations

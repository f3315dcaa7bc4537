"""digest: collect news, rank it, render an email digest, get it approved and send it."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

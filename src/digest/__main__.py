"""Entry point for ``python -m digest``."""

from __future__ import annotations

from digest.cli import main

main()

"""Rendering: Jinja2 + MJML + premailer once per variant, then MIME assembly."""

from __future__ import annotations

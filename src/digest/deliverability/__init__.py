"""What comes back after a send: bounces, complaints and auto-replies, read and classified.

Pure: :func:`parse` takes the bytes of one mail and returns a :class:`Report`; reading
files and applying the suppression policy happen elsewhere.
"""

from __future__ import annotations

from digest.deliverability.model import KINDS, Delivery, Recipient, Report
from digest.deliverability.parse import parse

__all__ = ["KINDS", "Delivery", "Recipient", "Report", "parse"]

"""Delivery backends: one module per way of handing a message on."""

from __future__ import annotations

"""digest: collect news, rank it, render an email digest, get it approved and send it.

The public API. Names are imported on first use (PEP 562), so ``import digest`` stays cheap
and no module of the package needs to import the package itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from digest.version import __version__

_API: dict[str, str] = {
    "App": "digest.app",
    "AuditEntry": "digest.models",
    "Backend": "digest.backends.base",
    "Candidate": "digest.models",
    "DigestError": "digest.exceptions",
    "Edition": "digest.models",
    "EditionState": "digest.models",
    "Envelope": "digest.backends.base",
    "Publication": "digest.models",
    "RenderedEdition": "digest.models",
    "SendReport": "digest.delivery.engine",
    "Settings": "digest.config",
    "Source": "digest.sources.base",
    "Store": "digest.store",
    "Story": "digest.models",
    "Subscriber": "digest.models",
    "Variant": "digest.models",
    "load_settings": "digest.config",
}

__all__ = [
    "App",
    "AuditEntry",
    "Backend",
    "Candidate",
    "DigestError",
    "Edition",
    "EditionState",
    "Envelope",
    "Publication",
    "RenderedEdition",
    "SendReport",
    "Settings",
    "Source",
    "Store",
    "Story",
    "Subscriber",
    "Variant",
    "__version__",
    "load_settings",
]

if TYPE_CHECKING:
    from digest.app import App
    from digest.backends.base import Backend, Envelope
    from digest.config import Settings, load_settings
    from digest.delivery.report import SendReport
    from digest.exceptions import DigestError
    from digest.models import (
        AuditEntry,
        Candidate,
        Edition,
        EditionState,
        Publication,
        RenderedEdition,
        Story,
        Subscriber,
        Variant,
    )
    from digest.sources.base import Source
    from digest.store import Store


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'digest' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

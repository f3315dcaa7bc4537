"""Processed images by content address: kept in the state database, optionally written out."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from digest.exceptions import StoreError
from digest.store.engine import guarded
from digest.store.repository import Store
from digest.store.sql import insert_ignore
from digest.store.tables import images

KEY = re.compile(r"[0-9a-f]{32}\.(?:jpg|png)")
"""What a stored image's name looks like: the URL path after /img/."""
CONTENT_TYPES = frozenset({"image/jpeg", "image/png"})


class ImageStore:
    """Images of editions; ``folder`` also gets each file (for a static host)."""

    def __init__(self, store: Store, *, folder: Path | None = None) -> None:
        self.store = store
        self.folder = folder

    def put(self, key: str, data: bytes, content_type: str) -> None:
        if not KEY.fullmatch(key) or content_type not in CONTENT_TYPES:
            raise StoreError(f"image key {key!r} ({content_type}) is not a content address")
        row = {
            "key": key,
            "content_type": content_type,
            "data": data,
            "size": len(data),
            "created_at": datetime.now(UTC),
        }
        # The key is the hash of the bytes: an existing row already holds them.
        with self.store.transaction() as tx:
            insert_ignore(tx.conn, images, [row])
        if self.folder is not None:
            path = self.folder / key
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                if not path.exists():
                    path.write_bytes(data)
            except OSError as exc:
                raise StoreError(f"{path}: cannot write image: {exc.strerror}") from exc

    def get(self, key: str) -> tuple[bytes, str] | None:
        """(bytes, content type), or None for an unknown or malformed key."""
        if not KEY.fullmatch(key):
            return None
        query = select(images.c.data, images.c.content_type).where(images.c.key == key)
        with guarded(self.store.where), self.store.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else (bytes(row.data), str(row.content_type))

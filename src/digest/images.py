"""Images we own: fetched at build, processed, stored content-addressed, served at BASE/img/."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table, insert, select
from sqlalchemy.exc import SQLAlchemyError

from digest.exceptions import FetchError, StoreError
from digest.models import Image, Rendition, Story
from digest.render.images import CONTENT_TYPES, ImageError, Processed, Shape, renditions

if TYPE_CHECKING:
    from digest.http import Fetcher
    from digest.store import Store

KEY = re.compile(r"[0-9a-f]{32}\.(?:jpg|png)")
"""What a stored image's name looks like: the URL path after /img/."""
ACCEPTED_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})

metadata = MetaData()

images = Table(
    "images",
    metadata,
    Column("key", String, primary_key=True),  # "<sha256 of data, 32 hex>.<ext>"
    Column("content_type", String, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    Column("created_at", String, nullable=False),
)


class ImageStore:
    """Processed images by content address; ``folder`` also gets each file (static hosts)."""

    def __init__(self, store: Store, *, folder: Path | None = None) -> None:
        from digest.store import create_tables

        self.store = store
        self.folder = folder
        try:
            create_tables(store.engine, metadata)
        except SQLAlchemyError as exc:
            raise StoreError(f"{store.path}: cannot create the images table: {exc}") from exc

    def put(self, key: str, data: bytes, content_type: str) -> None:
        if not KEY.fullmatch(key) or content_type not in CONTENT_TYPES.values():
            raise StoreError(f"image key {key!r} ({content_type}) is not a content address")
        row = {"key": key, "content_type": content_type, "data": data, "size": len(data),
               "created_at": datetime.now(UTC).isoformat()}  # fmt: skip
        try:
            with self.store.engine.begin() as conn:
                # The key is the hash of the bytes: an existing row already holds them.
                conn.execute(insert(images).prefix_with("OR IGNORE"), [row])
        except SQLAlchemyError as exc:
            raise StoreError(f"{self.store.path}: cannot store image {key}: {exc}") from exc
        if self.folder is not None:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                path = self.folder / key
                if not path.exists():
                    path.write_bytes(data)
            except OSError as exc:
                raise StoreError(f"{path}: cannot write image: {exc.strerror}") from exc

    def get(self, key: str) -> tuple[bytes, str] | None:
        """(bytes, content type), or None for an unknown or malformed key."""
        if not KEY.fullmatch(key):
            return None
        try:
            with self.store.engine.connect() as conn:
                row = conn.execute(
                    select(images.c.data, images.c.content_type).where(images.c.key == key)
                ).first()
        except SQLAlchemyError as exc:
            raise StoreError(f"{self.store.path}: {exc}") from exc
        return None if row is None else (bytes(row.data), str(row.content_type))


@dataclass(frozen=True, slots=True)
class OwnedImages:
    """Stories with our own renditions; ``files`` to store; warnings name each story."""

    stories: tuple[Story, ...]
    files: tuple[Processed, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ImageLimits:
    max_bytes: int = 5_000_000
    max_pixels: int = 40_000_000
    workers: int = 8


def _fetch(fetcher: Fetcher, url: str, *, allow_private: bool, limits: ImageLimits) -> bytes:
    response = fetcher.fetch(url, allow_private=allow_private)
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ACCEPTED_TYPES:
        raise ImageError(f"served as {kind or 'no type'!r}, not an image")
    if len(response.body) > limits.max_bytes:
        raise ImageError(f"{len(response.body):,} bytes, over images.max_bytes")
    return response.body


def own_images(
    stories: Sequence[Story],
    *,
    fetcher: Fetcher,
    shapes: Sequence[Shape],
    base_url: str,
    needs: Callable[[int], str | None],
    allow_private: Callable[[Story], bool] = lambda _s: False,
    limits: ImageLimits = ImageLimits(),
) -> OwnedImages:
    """Fetch every story image once and make a rendition per shape, all in parallel.

    ``needs(i)`` is the role story ``i`` shows in this edition's order (None: no image): a
    failure there drops the image with a warning; other roles (for a story an editor may
    later pin as the lead) are kept when they work and skipped silently otherwise.
    """
    base = base_url.rstrip("/")

    def one(item: tuple[int, Story]) -> tuple[Story, list[Processed], str]:
        i, story = item
        if story.image is None or story.image.renditions:
            return story, [], ""
        image: Image = story.image
        try:
            data = _fetch(fetcher, image.url, allow_private=allow_private(story), limits=limits)
        except (FetchError, ImageError) as exc:
            return replace(story, image=None), [], _warning(story, str(exc))
        made: list[Rendition] = []
        files: list[Processed] = []
        failed: dict[str, str] = {}
        try:
            results = renditions(data, shapes, max_pixels=limits.max_pixels)
        except ImageError as exc:
            return replace(story, image=None), [], _warning(story, str(exc))
        for name, out in results.items():
            if isinstance(out, ImageError):
                failed[name] = str(out)
                continue
            files.append(out)
            made.append(Rendition(name, f"{base}/{out.key}", out.width, out.height))
        role = needs(i)
        if not made or (role is not None and role in failed):
            why = failed.get(role or "", "") or next(iter(failed.values()), "no usable rendition")
            return replace(story, image=None), [], _warning(story, why)
        return replace(story, image=replace(image, renditions=tuple(made))), files, ""

    with ThreadPoolExecutor(max_workers=max(1, limits.workers)) as pool:
        results = list(pool.map(one, enumerate(stories)))
    return OwnedImages(
        stories=tuple(r[0] for r in results),
        files=tuple(f for r in results for f in r[1]),
        warnings=tuple(r[2] for r in results if r[2]),
    )


def _warning(story: Story, reason: str) -> str:
    # A fetch error already names the URL; an image error does not.
    return f"story {story.title!r}: image dropped ({reason})"

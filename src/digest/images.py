"""Images we own: fetched at build with the hardened client, checked and processed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from digest.config.settings import Settings
from digest.exceptions import DigestError, FetchError, ImageError
from digest.http import Fetcher
from digest.models import Image, Rendition, Story
from digest.render import placeholders
from digest.render.frame import Frame, Picture
from digest.render.images import LEAD, THUMB, Processed, Shape, logo, renditions

ACCEPTED_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})


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


@dataclass(frozen=True, slots=True)
class ImageWork:
    """How an installation owns its story images (App makes it from ``images`` settings)."""

    base_url: str
    shapes: tuple[Shape, ...]
    needs: Callable[[int], str | None]
    limits: ImageLimits
    private: frozenset[str] = frozenset()  # sources whose images may be on private hosts
    logos: tuple[Processed, ...] = ()  # stored with every edition that shows them

    def own(self, stories: Sequence[Story], fetcher: Fetcher) -> OwnedImages:
        owned = own_images(
            stories,
            fetcher=fetcher,
            shapes=self.shapes,
            base_url=self.base_url,
            needs=self.needs,
            allow_private=lambda story: story.source in self.private,
            limits=self.limits,
        )
        return replace(owned, files=(*owned.files, *self.logos))


def images_for(settings: Settings) -> tuple[Frame, ImageWork | None]:
    """The frame every email of this publication has (layout, note, logos, footer links,
    budget), and how its story images are owned (None: hotlinked, ``images.mode``)."""
    email, images = settings.email, settings.images
    base = (images.base_url or settings.publication.base_url.rstrip("/") + "/img").rstrip("/")
    light, dark = (_logo(path) for path in (email.logo, email.logo_dark))

    def picture(processed: Processed | None) -> Picture | None:
        if processed is None:
            return None
        url = f"{base}/{processed.key}"
        return Picture(url, processed.width, processed.height, settings.publication.name)

    frame = Frame(
        layout=email.layout,
        editor_note=email.editor_note,
        hotlink=images.mode == "hotlink",
        logo=picture(light),
        logo_dark=picture(dark),
        # Without a configured archive_url, "View in browser" opens the edition's page in
        # our archive, a URL filled in at send time; every reader has a preference page.
        archive_url=email.archive_url or placeholders.VIEW_URL,
        preferences=True,
        signup_url=email.signup_url,
        html_budget=email.html_budget,
    )
    if images.mode != "own":
        return frame, None
    return frame, ImageWork(
        base_url=base,
        shapes=(LEAD, THUMB) if frame.shows_thumbnails() else (LEAD,),
        needs=frame.role,
        limits=ImageLimits(max_bytes=images.max_bytes, max_pixels=images.max_pixels),
        private=frozenset(s.name for s in settings.sources if s.allow_private),
        logos=tuple(p for p in (light, dark) if p is not None),
    )


def _logo(path: Path | None) -> Processed | None:
    if path is None:
        return None
    try:
        return logo(path.read_bytes())
    except OSError as exc:
        raise DigestError(f"{path}: cannot read the logo: {exc.strerror}") from exc
    except DigestError as exc:
        raise DigestError(f"{path}: the logo cannot be used: {exc}") from exc

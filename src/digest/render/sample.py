"""A fixed sample edition, so `digest check` can render the templates without any network."""

from __future__ import annotations

from datetime import datetime

from digest.models import Image, Rendition, Story

_IMG = "https://example.org/img/"


def sample_stories(now: datetime) -> list[Story]:
    """Lead with an image, two sections, a thumbnail, "also in", an untitled section, RTL.

    Every optional field a template might use is exercised once, so an undefined variable
    or a wrong attribute shows up in `digest check` rather than at build time.
    """
    return [
        Story(
            url="https://example.org/sample/lead",
            title="Sample lead story",
            teaser="A sample teaser, long enough to wrap in the text part of the message. " * 2,
            source="Sample Wire",
            published=now,
            section="World",
            image=Image(
                url="https://example.org/sample/lead.jpg",
                alt="A sample photograph",
                caption="A sample caption.",
                credit="Sample Agency",
                renditions=(
                    Rendition("lead", _IMG + "0" * 32 + ".jpg", 592, 333),
                    Rendition("thumb", _IMG + "1" * 32 + ".jpg", 96, 96),
                ),
            ),
            also_in=("Other Wire",),
            author="Sam Ple",
            word_count=900,
            language="en",
        ),
        Story(
            url="https://example.org/sample/2",
            title="Sample story with a thumbnail",
            teaser="A shorter teaser.",
            source="Sample Wire",
            published=now,
            section="World",
            image=Image(
                url="https://example.org/sample/2.jpg",
                alt="A sample thumbnail",
                renditions=(Rendition("thumb", _IMG + "2" * 32 + ".jpg", 96, 96),),
            ),
        ),
        Story(
            url="https://example.org/sample/3",
            title="Sample story without an image",
            teaser="Another teaser.",
            source="Other Wire",
            published=now,
            section="",
            also_in=("Sample Wire", "Third Wire"),
        ),
        Story(
            url="https://example.org/sample/4",
            title="عنوان تجريبي",
            teaser="نص تجريبي قصير.",
            source="Other Wire",
            published=now,
            section="International",  # one story per section: templates may reorder within
            language="ar",
        ),
    ]

"""Large test photos made with Pillow: a shape per aspect ratio, with a pattern to see crops."""

from __future__ import annotations

import io

import PIL.Image
import PIL.ImageDraw

# The four shapes of the acceptance test: landscape, portrait, square and panorama.
SHAPES: dict[str, tuple[int, int]] = {
    "16x9": (2400, 1350),
    "2x3": (1200, 1800),
    "1x1": (1600, 1600),
    "3x1": (2400, 800),
}


def photo(width: int, height: int, *, kind: str = "JPEG", hue: int = 0) -> bytes:
    """A gradient with a centred disc and a frame: crops and centring show in screenshots."""
    image = PIL.Image.new("RGB", (width, height))
    draw = PIL.ImageDraw.Draw(image)
    for y in range(0, height, 8):
        shade = 60 + 140 * y // height
        draw.rectangle((0, y, width, y + 8), fill=((shade + hue) % 256, 120, 255 - shade))
    r = min(width, height) // 4
    draw.ellipse(
        (width // 2 - r, height // 2 - r, width // 2 + r, height // 2 + r), fill=(250, 210, 60)
    )
    draw.rectangle((0, 0, width - 1, height - 1), outline=(255, 255, 255), width=12)
    out = io.BytesIO()
    image.save(out, kind, quality=85)
    return out.getvalue()

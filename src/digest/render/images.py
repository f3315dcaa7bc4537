"""Pure image processing with Pillow: check, crop to the layout's shape, resize, encode."""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import PIL.Image
import PIL.ImageOps

from digest.exceptions import ImageError

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png"}
SCALE = 2  # files carry twice the display pixels each way, for retina screens
JPEG_QUALITY = 80


@dataclass(frozen=True, slots=True)
class Shape:
    """A slot in a layout: display size in CSS pixels; the aspect ratio is width/height."""

    role: str
    width: int
    height: int


# The lead is 16:9 across the content column; thumbnails are small squares beside headlines.
LEAD = Shape("lead", 592, 333)
THUMB = Shape("thumb", 96, 96)
LOGO_HEIGHT = 40  # CSS pixels; the width follows the logo's own aspect, up to LOGO_WIDTH
LOGO_WIDTH = 280


@dataclass(frozen=True, slots=True)
class Processed:
    """An encoded image ready to store: ``key`` is its content address ("<sha256>.<ext>")."""

    data: bytes
    ext: str
    width: int  # display size, CSS pixels
    height: int

    @property
    def key(self) -> str:
        return f"{hashlib.sha256(self.data).hexdigest()[:32]}.{self.ext}"

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.ext]


def open_image(data: bytes, *, max_pixels: int) -> PIL.Image.Image:
    """Open ``data`` lazily and refuse it before decoding if it is not a plain, sane image."""
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb warning is replaced by our stricter max_pixels check below.
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
            image = PIL.Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except PIL.Image.DecompressionBombError as exc:
        raise ImageError(f"image is a decompression bomb ({exc})") from exc
    except (PIL.UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageError("not an image we accept (JPEG, PNG, WebP or GIF)") from exc
    width, height = image.size
    if width < 1 or height < 1 or width * height > max_pixels:
        raise ImageError(f"image is {width}x{height} pixels, over the {max_pixels:,} pixel limit")
    return image


def _decoded(image: PIL.Image.Image, want: tuple[int, int]) -> PIL.Image.Image:
    """Decode (JPEG at a reduced scale when possible: faster, less memory), upright."""
    if image.format == "JPEG":
        image.draft("RGB", want)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PIL.Image.DecompressionBombWarning)
            image.load()
    except (OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombWarning) as exc:
        raise ImageError(f"image is corrupt or truncated ({exc})") from exc
    upright = PIL.ImageOps.exif_transpose(image)
    return upright if upright is not None else image


def _flatten(image: PIL.Image.Image) -> PIL.Image.Image:
    """RGB on white: JPEG has no alpha, and a transparent PNG must not turn black."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        out = PIL.Image.new("RGB", rgba.size, (255, 255, 255))
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out
    return image.convert("RGB")


def crop_resize(data: bytes, shape: Shape, *, max_pixels: int) -> Processed:
    """Crop ``data`` to ``shape``'s aspect ratio and resize it to twice its display size.

    Portraits are cropped a little above the centre, where faces and headlines tend to be.
    An image smaller than the display size is refused rather than blown up.
    """
    result = renditions(data, (shape,), max_pixels=max_pixels)[shape.role]
    if isinstance(result, ImageError):
        raise result
    return result


def renditions(
    data: bytes, shapes: Sequence[Shape], *, max_pixels: int
) -> dict[str, Processed | ImageError]:
    """crop_resize for several shapes, decoding the image once; per role, a result or why not.

    An image that cannot be opened or decoded at all raises ImageError.
    """
    image = open_image(data, max_pixels=max_pixels)
    largest = max(shapes, key=lambda s: s.width * s.height)
    image = _flatten(_decoded(image, (largest.width * SCALE, largest.height * SCALE)))
    return {shape.role: _fit(image, shape) for shape in shapes}


def _fit(image: PIL.Image.Image, shape: Shape) -> Processed | ImageError:
    target = (shape.width * SCALE, shape.height * SCALE)
    width, height = image.size
    ratio = shape.width / shape.height
    crop_w, crop_h = (
        (width, round(width / ratio))
        if width / height < ratio
        else (
            round(height * ratio),
            height,
        )
    )
    if crop_w < shape.width or crop_h < shape.height:
        return ImageError(
            f"image is {width}x{height} pixels, too small for a {shape.width}x{shape.height} "
            f"{shape.role} image"
        )
    size = target if crop_w >= target[0] else (crop_w, round(crop_w / ratio))
    centring = (0.5, 0.35) if height > width else (0.5, 0.5)
    fitted = PIL.ImageOps.fit(image, size, PIL.Image.Resampling.LANCZOS, centering=centring)
    out = io.BytesIO()
    # No EXIF or ICC copied: smaller files, and no location data from a photographer's camera.
    fitted.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    return Processed(out.getvalue(), "jpg", shape.width, shape.height)


def logo(data: bytes, *, max_pixels: int = 4_000_000) -> Processed:
    """A logo at LOGO_HEIGHT (or narrower to fit LOGO_WIDTH), PNG with its transparency."""
    image = open_image(data, max_pixels=max_pixels)
    width, height = image.size
    scale = min(LOGO_HEIGHT / height, LOGO_WIDTH / width)
    display = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = _decoded(image, (display[0] * SCALE, display[1] * SCALE)).convert("RGBA")
    k = min(SCALE, width / display[0])  # never upscale; one factor keeps the aspect ratio
    pixels = (max(1, round(display[0] * k)), max(1, round(display[1] * k)))
    resized = image.resize(pixels, PIL.Image.Resampling.LANCZOS)
    out = io.BytesIO()
    resized.save(out, "PNG", optimize=True)
    return Processed(out.getvalue(), "png", display[0], display[1])

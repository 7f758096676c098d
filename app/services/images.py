"""Uploaded images, made safe to publish: pure functions on bytes, no storage, no database.

Rules enforced here:
- only JPEG, PNG and WebP are accepted, judged by decoding, never by the file name or the
  declared content type (`invalid_image` otherwise, also for a truncated or corrupt file);
- the pixel count is read from the header and refused above the limit before any pixel is
  decoded, so a small file that would decode to gigabytes (a decompression bomb) costs
  nothing. For WebP it is read from the file's own first chunk before Pillow sees the file:
  Pillow's WebP decoder allocates the whole canvas when the file is opened. Pillow's own
  bomb guard is an error here, not a warning;
- an animated image keeps its first frame only;
- the stored image is at most `max_side` pixels on its long side. A JPEG is decoded at that
  size already where it can be (the decoder's DCT scaling, `draft`: 1/2, 1/4 or 1/8, never
  below the target); every format is reduced in place right after decoding, before it is
  turned or converted (an image with alpha band by band: `reduce_in_bands`), so no copy of
  the full-size pixels is made beyond the decoder's own;
- the image is turned upright by its EXIF orientation and then re-encoded in its own
  format from the pixels alone: no EXIF (a phone photo's GPS position is often the
  author's home), no XMP, no ICC profile, no comments, and nothing after the image data
  (a file appended to a JPEG) survives;
- at most `JobSlots.limit` images are cleaned at once per worker; one more is `busy` at
  once (it does not wait, so waiting requests pile up nowhere).

Memory: what a cleaning costs is about what its decoder needs for the full-size pixels:
a PNG 4 to 8 bytes per pixel (its image, then what the reduction needs beside it), a
lossless or lossy WebP about 16 (libwebp's canvas and its copy, the decoded frame,
Pillow's image), a JPEG far less once drafted (a progressive JPEG keeps its coefficients,
2 bytes per sample). `python -m bench.images --memory` measures it.
"""

import io
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, ImageOps

from app.core.errors import Busy, DomainError, InvalidImage
from app.core.i18n import _t

# Pillow format name -> (content type, file extension).
FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}

# The modes each format is written in; others are converted to the first.
_MODES = {
    "JPEG": ("RGB", "L"),
    "PNG": ("RGB", "RGBA", "L", "LA", "P"),
    "WEBP": ("RGB", "RGBA"),
}

# A cleaning takes well under a second at the default limits.
BUSY_RETRY_SECONDS = 2


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    format: str  # a key of FORMATS
    width: int
    height: int

    @property
    def content_type(self) -> str:
        return FORMATS[self.format][0]

    @property
    def extension(self) -> str:
        return FORMATS[self.format][1]


class JobSlots:
    """At most `limit` cleanings at once in this process (one set per worker).

    A thread semaphore: cleanings run in the worker's thread pool. When every slot is taken
    the upload is refused at once with `busy` rather than queued: a queued request would keep
    a thread (and its connection slot) while it waits."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free = threading.BoundedSemaphore(limit)

    @contextmanager
    def held(self) -> Iterator[None]:
        if not self._free.acquire(blocking=False):
            raise Busy(
                _t(
                    "Other images are being processed; try again in {retry} seconds.",
                    retry=BUSY_RETRY_SECONDS,
                ),
                retry_after=BUSY_RETRY_SECONDS,
            )
        try:
            yield
        finally:
            self._free.release()


def _refuse(reason: str) -> DomainError:
    return InvalidImage(_t("Not a JPEG, PNG or WebP image we accept: {reason}.", reason=reason))


def _refuse_size(width: int, height: int, max_pixels: int) -> DomainError:
    return _refuse(f"{width}x{height} pixels is more than {max_pixels}")


def webp_canvas(data: bytes) -> tuple[int, int] | None:
    """The canvas size a WebP file declares in its first chunk (RFC 9649), or None when
    `data` is not a WebP file with one of the three chunk kinds a WebP file starts with."""
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk, body = data[12:16], data[20:30]
    if chunk == b"VP8X":  # extended: flags (4 bytes), then width - 1 and height - 1, 24 bits
        return 1 + int.from_bytes(body[4:7], "little"), 1 + int.from_bytes(body[7:10], "little")
    if chunk == b"VP8L" and body[0] == 0x2F:  # lossless: 14 bits each of width - 1, height - 1
        bits = int.from_bytes(body[1:5], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and body[3:6] == b"\x9d\x01\x2a":  # lossy: after the start code
        return (
            int.from_bytes(body[6:8], "little") & 0x3FFF,
            int.from_bytes(body[8:10], "little") & 0x3FFF,
        )
    return None


def fitted(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """`size` scaled down (never up) so its long side is at most `max_side`."""
    width, height = size
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def clean(data: bytes, *, max_pixels: int, max_side: int) -> CleanImage:
    """`data` re-encoded without metadata, at most `max_side` pixels on its long side, or
    `invalid_image`."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        canvas = webp_canvas(data)
        if canvas is None:
            raise _refuse("it cannot be read as one")
        if canvas[0] * canvas[1] > max_pixels:
            raise _refuse_size(*canvas, max_pixels)
    with warnings.catch_warnings():
        # Pillow warns between MAX_IMAGE_PIXELS and twice that; here every bomb is an error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=list(FORMATS)) as opened:
                width, height = opened.size
                if width * height > max_pixels:
                    raise _refuse_size(width, height, max_pixels)
                # A JPEG with more pictures after it (MPF: a phone's HDR gain map, a stereo
                # pair) opens as MPO: it is a JPEG, and only its first picture is kept.
                fmt = "JPEG" if opened.format == "MPO" else str(opened.format)
                opened.seek(0)  # the first frame of an animation
                # JPEG: decode at a reduced scale no smaller than the target (other formats
                # ignore it). Then reduce in place, before turning or converting: no copy of
                # the full-size pixels beyond the decoder's own.
                opened.draft(None, fitted(opened.size, max_side))
                image: Image.Image = opened
                # Alpha: thumbnail() would first copy the whole image premultiplied; reduce
                # band by band to no less than the target, then thumbnail() what is left.
                factor = max(opened.size) // max_side
                if opened.mode in ("RGBA", "LA") and factor >= 2:
                    image = reduce_in_bands(opened, factor)
                image.thumbnail((max_side, max_side))
                ImageOps.exif_transpose(image, in_place=True)
                return _reencode(image, fmt)
        except InvalidImage:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _refuse("too many pixels") from None
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            # UnidentifiedImageError is an OSError; truncated data raises OSError or EOFError.
            raise _refuse("it cannot be read as one") from exc


_BAND_ROWS = 256


def reduce_in_bands(image: Image.Image, factor: int) -> Image.Image:
    """`image.reduce(factor)` (each `factor` x `factor` block averaged), a band of rows at a
    time, keeping `info` (the orientation is read from it afterwards).

    Pillow reduces or resizes an image with alpha through a premultiplied copy of all of
    it; a band's copy is small. Every band is a whole number of blocks high, so every block
    is averaged exactly as in one pass."""
    width, height = image.size
    reduced = Image.new(image.mode, (-(-width // factor), -(-height // factor)))
    rows = factor * max(1, _BAND_ROWS // factor)
    for top in range(0, height, rows):
        band = image.crop((0, top, width, min(height, top + rows)))
        reduced.paste(band.reduce(factor), (0, top // factor))
    reduced.info = dict(image.info)
    return reduced


def _reencode(image: Image.Image, fmt: str) -> CleanImage:
    if image.mode not in _MODES[fmt]:
        image = image.convert("RGBA" if "A" in image.mode and fmt != "JPEG" else "RGB")
    # A new image from the pixels alone: `info` (EXIF, XMP, ICC, comments) is left behind.
    bare = Image.new(image.mode, image.size)
    if image.mode == "P":
        palette = image.getpalette()
        if palette is not None:
            bare.putpalette(palette)
        if "transparency" in image.info:
            bare.info["transparency"] = image.info["transparency"]
    bare.paste(image)
    out = io.BytesIO()
    if fmt == "JPEG":
        bare.save(out, format="JPEG", quality=85, optimize=True)
    elif fmt == "WEBP":
        bare.save(out, format="WEBP", quality=85)
    else:
        bare.save(out, format="PNG", optimize=False)
    return CleanImage(data=out.getvalue(), format=fmt, width=bare.width, height=bare.height)

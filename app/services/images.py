"""Uploaded images, made safe to publish: pure functions on bytes, no storage, no database.

Rules enforced here:
- only JPEG, PNG and WebP are accepted, judged by decoding, never by the file name or the
  declared content type (`invalid_image` otherwise, also for a truncated or corrupt file);
- the pixel count is read from the header and refused above the limit before any pixel is
  decoded, so a small file that would decode to gigabytes (a decompression bomb) costs
  nothing; Pillow's own bomb guard is an error here, not a warning;
- an animated image keeps its first frame only;
- the image is turned upright by its EXIF orientation and then re-encoded in its own
  format from the pixels alone: no EXIF (a phone photo's GPS position is often the
  author's home), no XMP, no ICC profile, no comments, and nothing after the image data
  (a file appended to a JPEG) survives.
"""

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

from app.core.errors import DomainError, InvalidImage
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


def _refuse(reason: str) -> DomainError:
    return InvalidImage(_t("Not a JPEG, PNG or WebP image we accept: {reason}.", reason=reason))


def clean(data: bytes, *, max_pixels: int) -> CleanImage:
    """`data` re-encoded without metadata, or `invalid_image`."""
    with warnings.catch_warnings():
        # Pillow warns between MAX_IMAGE_PIXELS and twice that; here every bomb is an error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=list(FORMATS)) as opened:
                width, height = opened.size
                if width * height > max_pixels:
                    raise _refuse(f"{width}x{height} pixels is more than {max_pixels}")
                fmt = str(opened.format)
                opened.seek(0)  # the first frame of an animation
                opened.load()
                image = ImageOps.exif_transpose(opened) or opened.copy()
        except InvalidImage:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _refuse("too many pixels") from None
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            # UnidentifiedImageError is an OSError; truncated data raises OSError or EOFError.
            raise _refuse("it cannot be read as one") from exc
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

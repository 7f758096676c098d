"""The WebP header read before Pillow opens a file (its decoder allocates the whole canvas
when it is made), and the target size of a reduced image."""

import io
from typing import Any

import pytest
from PIL import Image

from app.core.errors import InvalidImage
from app.services.images import clean, fitted, reduce_in_bands, webp_canvas


def webp(mode: str, size: tuple[int, int], **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, format="WEBP", **save)
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "chunk"),
    [
        pytest.param(webp("RGB", (1234, 567), quality=50), b"VP8 ", id="lossy"),
        pytest.param(webp("RGB", (1234, 567), lossless=True), b"VP8L", id="lossless"),
        pytest.param(webp("RGBA", (1234, 567), quality=50), b"VP8X", id="lossy-alpha"),
        pytest.param(
            webp("RGB", (1234, 567), lossless=True, exif=b"Exif\0\0MM"), b"VP8X", id="extended"
        ),
        pytest.param(webp("RGB", (16383, 3), lossless=True), b"VP8L", id="lossless-widest"),
    ],
)
def test_the_webp_canvas_is_read_from_each_kind_of_first_chunk(data: bytes, chunk: bytes) -> None:
    assert data[12:16] == chunk
    with Image.open(io.BytesIO(data)) as image:
        assert webp_canvas(data) == image.size


@pytest.mark.parametrize(
    "data",
    [
        b"RIFF\0\0\0\0WEBPVP8Z" + b"\0" * 30,  # an unknown first chunk
        b"RIFF\0\0\0\0WEBPVP8L",  # cut short
        b"RIFF\0\0\0\0WEBPVP8L\0\0\0\0\x00" + b"\0" * 20,  # no lossless signature
    ],
)
def test_a_webp_whose_size_cannot_be_read_is_refused(data: bytes) -> None:
    assert webp_canvas(data) is None
    with pytest.raises(InvalidImage):
        clean(data, max_pixels=25_000_000, max_side=2048)


def test_other_files_are_not_webp() -> None:
    assert webp_canvas(b"\x89PNG\r\n\x1a\n" + b"\0" * 40) is None


@pytest.mark.parametrize(
    ("size", "fits"),
    [
        ((6000, 4000), (2048, 1365)),
        ((4000, 6000), (1365, 2048)),
        ((2048, 10), (2048, 10)),
        ((100, 50), (100, 50)),  # never enlarged
        ((16383, 1), (2048, 1)),  # never below one pixel
    ],
)
def test_fitted(size: tuple[int, int], fits: tuple[int, int]) -> None:
    assert fitted(size, 2048) == fits


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
@pytest.mark.parametrize(("size", "factor"), [((700, 1000), 3), ((1000, 613), 2), ((333, 777), 5)])
def test_reducing_in_bands_is_reducing_in_one_pass(
    mode: str, size: tuple[int, int], factor: int
) -> None:
    image = Image.merge(
        "RGBA", [Image.effect_noise(size, 80 + 10 * band) for band in range(4)]
    ).convert(mode)
    image.info["exif"] = b"Exif\0\0MM"
    reduced = reduce_in_bands(image, factor)
    assert reduced.tobytes() == image.reduce(factor).tobytes()
    assert (reduced.mode, reduced.size) == (mode, image.reduce(factor).size)
    assert reduced.info["exif"] == b"Exif\0\0MM"

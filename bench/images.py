"""Image cleaning benchmark: `python -m bench.images`.

Times `app.services.images.clean` (decode, turn upright, re-encode without metadata) on a
12-megapixel JPEG of about 4 MB (a phone photo's size), against decoding it alone, and the
refusal of a 48-megapixel PNG of a few kilobytes (a decompression bomb), which must cost
nothing because it is refused from the header. Medians over --repeat runs.
"""

import argparse
import io
import statistics
import time
from collections.abc import Callable

from PIL import Image

from app.core.errors import DomainError
from app.services.images import clean

MAX_PIXELS = 40_000_000


def photo() -> bytes:
    """4000x3000, a gradient with noise: about as hard to compress as a photo."""
    noise = Image.effect_noise((4000, 3000), 64).convert("RGB")
    gradient = Image.linear_gradient("L").resize((4000, 3000)).convert("RGB")
    out = io.BytesIO()
    Image.blend(gradient, noise, 0.15).save(out, format="JPEG", quality=90)
    return out.getvalue()


def bomb() -> bytes:
    out = io.BytesIO()
    Image.new("1", (8000, 6000)).save(out, format="PNG")
    return out.getvalue()


def median_seconds(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def refuse(data: bytes) -> None:
    try:
        clean(data, max_pixels=MAX_PIXELS)
    except DomainError:
        return
    raise AssertionError("the bomb was accepted")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    data, big = photo(), bomb()

    def decode() -> None:
        with Image.open(io.BytesIO(data)) as image:
            image.load()

    decoding = median_seconds(decode, args.repeat)
    cleaning = median_seconds(lambda: clean(data, max_pixels=MAX_PIXELS), args.repeat)
    refusing = median_seconds(lambda: refuse(big), args.repeat)
    print(f"photo: {len(data):,} bytes, 4000x3000")
    print(f"decode alone: {decoding * 1000:.0f} ms (median of {args.repeat})")
    print(f"clean:        {cleaning * 1000:.0f} ms, {cleaning / decoding:.1f}x decoding")
    print(f"bomb: {len(big):,} bytes, 8000x6000, refused in {refusing * 1000:.2f} ms")


if __name__ == "__main__":
    main()

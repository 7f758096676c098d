"""Image cleaning benchmark: `python -m bench.images`.

Times `app.services.images.clean` (decode, turn upright, re-encode without metadata) on a
12-megapixel JPEG of about 4 MB (a phone photo's size), against decoding it alone, and the
refusal of a 48-megapixel PNG of a few kilobytes (a decompression bomb), which must cost
nothing because it is refused from the header. Medians over --repeat runs.

`python -m bench.images --memory` measures instead what one cleaning costs in memory, for
the worst shapes an upload can have: each case runs in a fresh process (Python, Pillow and
the app imported, the file read), which reports its peak resident set (VmHWM, the max RSS
of that process alone: a child's `ru_maxrss` would also count the parent it was spawned
from) before and after the cleaning; "cleaning" is the difference. Pillow's pixel buffers
are C memory, which tracemalloc does not see; RSS does. The limits
are the settings' defaults of the code it runs with, so the same file run against an older
checkout (`cd old && python -m bench.images --memory`, with this file copied in) measures
the code and limits before.
"""

import argparse
import inspect
import io
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from app.core.config import Settings
from app.core.errors import DomainError
from app.services.images import clean

MAX_PIXELS = 40_000_000


def photo(size: tuple[int, int] = (4000, 3000), **save: object) -> bytes:
    """A gradient with noise: about as hard to compress as a photo."""
    noise = Image.effect_noise(size, 64).convert("RGB")
    gradient = Image.linear_gradient("L").resize(size).convert("RGB")
    out = io.BytesIO()
    Image.blend(gradient, noise, 0.15).save(out, format="JPEG", quality=90, **save)
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
        clean(data, max_pixels=MAX_PIXELS, **_side())
    except DomainError:
        return
    raise AssertionError("the bomb was accepted")


def _side() -> dict[str, int]:
    """`max_side` for a `clean` that takes one (the code before it had none)."""
    if "max_side" in inspect.signature(clean).parameters:
        return {"max_side": int(Settings.model_fields["image_max_side"].default)}
    return {}


def timing(repeat: int) -> None:
    data, big = photo(), bomb()

    def decode() -> None:
        with Image.open(io.BytesIO(data)) as image:
            image.load()

    decoding = median_seconds(decode, repeat)
    cleaning = median_seconds(lambda: clean(data, max_pixels=MAX_PIXELS, **_side()), repeat)
    refusing = median_seconds(lambda: refuse(big), repeat)
    print(f"photo: {len(data):,} bytes, 4000x3000")
    print(f"decode alone: {decoding * 1000:.0f} ms (median of {repeat})")
    print(f"clean:        {cleaning * 1000:.0f} ms, {cleaning / decoding:.1f}x decoding")
    print(f"bomb: {len(big):,} bytes, 8000x6000, refused in {refusing * 1000:.2f} ms")


# --- memory ---------------------------------------------------------------------------


def _flat(fmt: str, mode: str, size: tuple[int, int], **save: object) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, "teal").save(out, format=fmt, **save)
    return out.getvalue()


# name -> (what it is, how to make it). The first is the issue's: 1,588 bytes, just under
# the 40-megapixel cap of before.
CASES: dict[str, tuple[str, Callable[[], bytes]]] = {
    "webp-40mp": (
        "lossless WebP 6324x6324 (40.0 MP)",
        lambda: _flat("WEBP", "RGB", (6324, 6324), lossless=True),
    ),
    "png-40mp": ("PNG RGBA 7745x5164 (40.0 MP)", lambda: _flat("PNG", "RGBA", (7745, 5164))),
    "webp-25mp": (
        "lossless WebP 5000x5000 (25.0 MP)",
        lambda: _flat("WEBP", "RGBA", (5000, 5000), lossless=True),
    ),
    "png-25mp": ("PNG RGBA 5000x5000 (25.0 MP)", lambda: _flat("PNG", "RGBA", (5000, 5000))),
    "jpeg-12mp": ("JPEG photo 4000x3000 (12.0 MP)", photo),
    "jpeg-24mp": ("JPEG photo 5712x4284 (24.5 MP)", lambda: photo((5712, 4284))),
    "jpeg-24mp-progressive-cmyk": (
        "progressive CMYK JPEG 5712x4284 (24.5 MP)",
        lambda: _flat("JPEG", "CMYK", (5712, 4284), progressive=True, subsampling=0),
    ),
}


def _peak_kib() -> int:
    """This process's peak resident set so far (VmHWM: its own, since it was started)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise SystemExit("no VmHWM in /proc/self/status (Linux only)")


def _child(path: str) -> None:
    """One case in this fresh process: read the file, then clean it; print the peak RSS
    before and after the cleaning, its CPU time and what became of the image."""
    data = Path(path).read_bytes()
    max_pixels = int(Settings.model_fields["image_max_pixels"].default)
    before = _peak_kib()
    start = time.process_time()
    try:
        result = clean(data, max_pixels=max_pixels, **_side())
        said = f"stored {result.width}x{result.height}, {len(result.data):,} bytes"
    except DomainError as error:
        said = f"refused ({error.code})"
    cpu = time.process_time() - start
    print(before, _peak_kib(), cpu, said)


def _run(path: Path) -> tuple[float, float, float, str]:
    """(peak RSS before cleaning, after, in MiB; CPU seconds; result) of a fresh process."""
    args = [sys.executable, "-m", "bench.images", "--child", str(path)]
    said = subprocess.run(args, check=True, capture_output=True, text=True).stdout.split(None, 3)
    return int(said[0]) / 1024, int(said[1]) / 1024, float(said[2]), said[3].strip()


def memory(repeat: int, names: list[str]) -> None:
    max_pixels = Settings.model_fields["image_max_pixels"].default
    print(f"IMAGE_MAX_PIXELS {max_pixels:,}, {_side() or 'no max_side'}; median of {repeat}")
    print(f"{'case':<28} {'bytes':>10} {'peak RSS':>9} {'cleaning':>9} {'CPU':>6}  result")
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            path = Path(folder) / name
            path.write_bytes(CASES[name][1]())
            runs = [_run(path) for _ in range(repeat)]
            peak = statistics.median(r[1] for r in runs)
            added = statistics.median(r[1] - r[0] for r in runs)
            cpu = statistics.median(r[2] for r in runs)
            print(
                f"{name:<28} {path.stat().st_size:>10,} {peak:>5.0f} MiB {added:>5.0f} MiB "
                f"{cpu:>5.2f}s  {runs[0][3]}"
            )
            path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--memory", action="store_true", help="peak memory per case")
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="(repeatable)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
    elif args.memory:
        memory(args.repeat, args.case or list(CASES))
    else:
        timing(args.repeat)


if __name__ == "__main__":
    main()

"""Benchmark: one upload -> a 2048 px WEBP and a 300 px WEBP thumbnail.

Compares, in the same run and on the same generated photo-like JPEG:

- naive: what most upload handlers do: open the bytes once per output, ``exif_transpose``,
  ``thumbnail(LANCZOS)``, save;
- ours: ``optimize_image_variants`` (one decode with shrink-on-load, thumbnail from the main);
- ours-m4: the same with libwebp method 4 for the main too (the encoder effort naive uses);
- pyvips: ``thumbnail_buffer`` per output (the practical speed limit; optional: skipped if
  ``pyvips`` is not installed; ``pip install "pyvips[binary]"``).

Each measurement runs in a fresh subprocess: the first call gives peak memory (rise of the
resident set's high-water mark over the baseline after imports and input loading), the
following calls give the time (median). Usage::

    PYTHONPATH=src python benchmarks/bench_images.py            # everything (~2 minutes)
    PYTHONPATH=src python benchmarks/bench_images.py --quick    # 24 MP headline only
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

SRC = Path(__file__).resolve().parents[1] / "src"
if SRC.is_dir() and str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

MAIN, THUMB, QUALITY = 2048, 300, 80
SIZES_MP = {2: (1732, 1155), 6: (3000, 2000), 12: (4240, 2828), 24: (6000, 4000), 48: (8485, 5657)}


# ------------------------------------------------------------------------------ input


def make_photo(size: tuple[int, int]) -> bytes:
    """A photo-like JPEG (q90): smooth shapes, texture and sensor-like noise.

    Pillow's noise is not seeded, so byte counts vary by about 1% between runs; every
    approach in one run gets the same input.
    """
    from PIL import Image, ImageDraw

    width, height = size
    base = Image.merge(
        "RGB",
        [
            Image.effect_noise((width // 64 + 1, height // 64 + 1), 70).resize(
                size, Image.Resampling.BICUBIC
            ),
            Image.linear_gradient("L").resize(size),
            Image.effect_noise((width // 8 + 1, height // 8 + 1), 50).resize(
                size, Image.Resampling.BICUBIC
            ),
        ],
    )
    draw = ImageDraw.Draw(base)
    for i in range(40):
        x, y = (i * 7919) % width, (i * 104729) % height
        draw.ellipse((x, y, x + width // 6, y + height // 6), outline=(250, 240, 200), width=6)
    grain = Image.effect_noise((width // 2, height // 2), 12).resize(size)
    photo = Image.blend(base, Image.merge("RGB", [grain] * 3), 0.15)
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 1
    photo.save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


# ------------------------------------------------------------------------- approaches


def naive(data: bytes) -> list[int]:
    from PIL import Image, ImageOps

    sizes = []
    for box in (MAIN, THUMB):
        image: Image.Image = Image.open(io.BytesIO(data))
        image = ImageOps.exif_transpose(image)
        image.thumbnail((box, box), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, "WEBP", quality=QUALITY)
        sizes.append(out.tell())
    return sizes


def ours(data: bytes) -> list[int]:
    from django_imagekit_storage import ImageSpec, optimize_image_variants

    results = optimize_image_variants(
        data,
        {
            "main": ImageSpec(max_size=MAIN, quality=QUALITY),
            "thumb": ImageSpec(max_size=THUMB, quality=QUALITY),
        },
    )
    return [results["main"].size, results["thumb"].size]


def ours_method4(data: bytes) -> list[int]:
    """Ours with libwebp method 4 for every output (as naive and pyvips use)."""
    from django_imagekit_storage import images

    images.WEBP_METHOD_LARGE = 4
    return ours(data)


def vips(data: bytes) -> list[int]:
    import pyvips  # type: ignore[import-not-found, unused-ignore]  # optional, untyped

    sizes = []
    for box in (MAIN, THUMB):
        image = pyvips.Image.thumbnail_buffer(data, box, height=box, size="down")
        sizes.append(len(image.webpsave_buffer(Q=QUALITY, keep="none")))
    return sizes


APPROACHES: dict[str, Callable[[bytes], list[int]]] = {
    "naive": naive,
    "ours": ours,
    "ours-m4": ours_method4,
    "pyvips": vips,
}


# ------------------------------------------------------------------------ measurement


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def child(approach: str, path: str, runs: int) -> None:
    data = Path(path).read_bytes()
    function = APPROACHES[approach]
    if approach == "pyvips":
        import pyvips  # type: ignore[import-not-found, unused-ignore]  # noqa: F401  # before the baseline, like Pillow below
    from PIL import Image, ImageOps  # noqa: F401

    import django_imagekit_storage.images  # noqa: F401

    baseline = _status_kib("VmRSS")
    sizes = function(data)
    peak = _status_kib("VmHWM") - baseline
    # The first call paid one-off costs (plugin loading, allocator warm-up): time the rest.
    # CPU time (all threads) is also kept: on a shared machine it is the steadier number.
    walls, cpus = [], []
    for _ in range(max(1, runs - 1)):
        cpu, started = time.process_time(), time.perf_counter()
        function(data)
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    print(
        json.dumps(
            {
                "ms": statistics.median(walls) * 1000,
                "cpu_ms": statistics.median(cpus) * 1000,
                "peak_mib": peak / 1024,
                "bytes": sizes,
            }
        )
    )


def measure(approach: str, path: str, runs: int) -> dict[str, Any] | None:
    result = subprocess.run(
        [sys.executable, __file__, "--child", approach, path, "--runs", str(runs)],
        capture_output=True,
        text=True,
        check=False,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        },
    )
    if result.returncode != 0:
        if "No module named 'pyvips'" in result.stderr or "cannot load library" in result.stderr:
            return None
        raise RuntimeError(f"{approach} failed:\n{result.stderr}")
    value: dict[str, Any] = json.loads(result.stdout)
    return value


def webp_methods(data: bytes) -> None:
    """Time and bytes of the 2048 px main's WEBP encode at each libwebp method."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (MAIN, MAIN))
    image.thumbnail((MAIN, MAIN), Image.Resampling.LANCZOS)
    print(
        f"\nWEBP method trade-off ({image.width}x{image.height}, quality {QUALITY}; CPU, median of 3)"
    )
    print(f"{'method':>6} {'CPU ms':>8} {'bytes':>9} {'vs method 4':>18}")
    rows = {}
    for method in range(7):
        times = []
        for _ in range(3):
            out = io.BytesIO()
            started = time.process_time()
            image.save(out, "WEBP", quality=QUALITY, method=method)
            times.append(time.process_time() - started)
        rows[method] = (statistics.median(times) * 1000, out.tell())
    for method, (ms, size) in rows.items():
        ms4, size4 = rows[4]
        print(f"{method:>6} {ms:8.0f} {size:9d} {ms / ms4:6.2f}x t {size / size4:5.3f}x b")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=2, metavar=("APPROACH", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=5, help="calls per measurement (default 5)")
    parser.add_argument("--quick", action="store_true", help="the 24 MP headline only")
    parser.add_argument(
        "--methods", action="store_true", help="with --quick: the WEBP method table"
    )
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.runs)
        return

    import PIL

    print(f"Python {sys.version.split()[0]}, Pillow {PIL.__version__}, {os.cpu_count()} CPUs")
    print(f"Task: JPEG -> {MAIN} px WEBP + {THUMB} px WEBP thumbnail, quality {QUALITY}")
    sizes = [24] if args.quick else list(SIZES_MP)
    with tempfile.TemporaryDirectory() as tmp:
        headline: dict[str, dict[str, Any] | None] = {}
        print(
            f"\n{'input':>10} {'approach':>8} {'wall ms':>8} {'CPU ms':>8} {'peak MiB':>9} "
            f"{'main B':>8} {'thumb B':>8}"
        )
        for mp in sizes:
            data = make_photo(SIZES_MP[mp])
            path = Path(tmp) / f"{mp}.jpg"
            path.write_bytes(data)
            for approach in APPROACHES:
                result = measure(approach, str(path), args.runs)
                if mp == 24:
                    headline[approach] = result
                if result is None:
                    print(
                        f"{mp:>7} MP {approach:>8}   (not installed: pip install 'pyvips[binary]')"
                    )
                    continue
                main_bytes, thumb_bytes = result["bytes"]
                print(
                    f"{mp:>7} MP {approach:>8} {result['ms']:8.0f} {result['cpu_ms']:8.0f} "
                    f"{result['peak_mib']:9.1f} "
                    f"{main_bytes:8d} {thumb_bytes:8d}"
                )
        ours_result, naive_result, vips_result = (
            headline["ours"],
            headline["naive"],
            headline["pyvips"],
        )
        m4_result = headline["ours-m4"]
        assert ours_result is not None
        assert naive_result is not None
        assert m4_result is not None
        print("\n24 MP headline")
        print(
            f"  naive / ours time:   {naive_result['ms'] / ours_result['ms']:.2f}x faster "
            f"(CPU: {naive_result['cpu_ms'] / ours_result['cpu_ms']:.2f}x; target >= 2.4x)"
        )
        print(
            f"  naive / ours-m4:     {naive_result['ms'] / m4_result['ms']:.2f}x faster "
            f"(CPU: {naive_result['cpu_ms'] / m4_result['cpu_ms']:.2f}x)"
        )
        print(
            f"  ours / naive memory: {ours_result['peak_mib'] / naive_result['peak_mib']:.2f} "
            f"(target <= 0.33)"
        )
        if vips_result is not None:
            print(
                f"  pyvips / ours time:  {vips_result['ms'] / ours_result['ms']:.2f} "
                f"(>= 1: as fast or faster; CPU: {vips_result['cpu_ms'] / ours_result['cpu_ms']:.2f})"
            )
            print(
                f"  ours / pyvips memory: {ours_result['peak_mib'] / vips_result['peak_mib']:.2f}"
            )
        if not args.quick or args.methods:
            webp_methods((Path(tmp) / "24.jpg").read_bytes())


if __name__ == "__main__":
    main()

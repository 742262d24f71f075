"""Benchmarks of ImageKitStorage, each printed as a ratio to a baseline measured in the same run.

    python benchmarks/bench_storage.py            # all three
    python benchmarks/bench_storage.py url        # url() vs FileSystemStorage.url()
    python benchmarks/bench_storage.py save       # save() vs bare SDK uploads vs plain httpx
    python benchmarks/bench_storage.py memory     # peak RSS saving a 200 MB TemporaryUploadedFile

The stand-in ImageKit server runs in its own process (``python -m
django_imagekit_storage.testing``), so its work is not counted in our time or memory.
Targets (issue 3): public url() <= 0.5x FileSystemStorage.url(), signed url() <= 1.0x;
save() <= 1.10x the bare SDK; resident memory grows by < 32 MB for a 200 MB file.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from contextlib import contextmanager
from typing import TYPE_CHECKING

import django
from django.conf import settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

PRIVATE_KEY = "private_benchmark_key"


def _configure() -> None:
    if not settings.configured:
        settings.configure(
            USE_TZ=True,
            MEDIA_URL="/media/",
            MEDIA_ROOT=tempfile.gettempdir(),
            FILE_UPLOAD_TEMP_DIR=tempfile.gettempdir(),
        )
        django.setup()


@contextmanager
def stand_in_server() -> Iterator[tuple[str, str]]:
    """``(base_url, url_endpoint)`` of a stand-in server running in a child process."""
    process = subprocess.Popen(
        [sys.executable, "-m", "django_imagekit_storage.testing", "--private-key", PRIVATE_KEY],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = url_endpoint = ""
        for line in process.stdout:
            if match := re.search(r"IMAGEKIT_BASE_URL=(\S+)", line):
                base_url = match.group(1)
            if match := re.search(r"IMAGEKIT_URL_ENDPOINT=(\S+)", line):
                url_endpoint = match.group(1)
                break
        if not base_url or not url_endpoint:
            raise RuntimeError("the stand-in server did not start")
        yield base_url, url_endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


def _per_call(function: Callable[[], object], number: int) -> float:
    """Best of five, in microseconds per call."""
    return min(timeit.repeat(function, number=number, repeat=5)) / number * 1e6


# --- url() ---------------------------------------------------------------------------


def bench_url() -> None:
    _configure()
    from django.core.files.storage import FileSystemStorage

    from django_imagekit_storage.storage import ImageKitStorage

    endpoint = "https://ik.imagekit.io/your_id"
    public = ImageKitStorage(private_key=PRIVATE_KEY, url_endpoint=endpoint, location="media")
    signed = ImageKitStorage(
        private_key=PRIVATE_KEY, url_endpoint=endpoint, location="media", signed_urls=True
    )
    filesystem = FileSystemStorage()
    name = "photos/2026/holiday_Ab3dE9xQz.jpg"
    transformation = [{"width": 400, "height": 300}]
    number = 100_000
    baseline = _per_call(lambda: filesystem.url(name), number)
    rows = [
        ("public", _per_call(lambda: public.url(name), number), 0.5),
        ("signed", _per_call(lambda: signed.url(name), number), 1.0),
        (
            "public + transformation",
            _per_call(lambda: public.url(name, transformation=transformation), number),
            None,
        ),
        ("signed, expire=600", _per_call(lambda: signed.url(name, expire=600), number), None),
    ]
    print(f"url(): FileSystemStorage.url() {baseline:.2f} us per call")
    for label, micros, target in rows:
        goal = f"  (target <= {target:.2f}x)" if target is not None else ""
        print(f"  {label:<26} {micros:6.2f} us  {micros / baseline:5.2f}x{goal}")


# --- save() --------------------------------------------------------------------------


def bench_save(files: int = 200, size: int = 100_000, rounds: int = 5) -> None:
    _configure()
    import httpx
    import imagekitio
    from django.core.files.base import ContentFile

    from django_imagekit_storage.storage import ImageKitStorage

    data = os.urandom(size)
    with stand_in_server() as (base_url, url_endpoint):
        storage = ImageKitStorage(
            private_key=PRIVATE_KEY, url_endpoint=url_endpoint, base_url=base_url
        )
        sdk = imagekitio.ImageKit(private_key=PRIVATE_KEY, password="", base_url=base_url)
        plain = httpx.Client(auth=(PRIVATE_KEY, ""))

        def with_storage(round_: int, index: int) -> None:
            storage.save(f"storage/{round_}/f{index}.bin", ContentFile(data))

        def with_sdk(round_: int, index: int) -> None:
            sdk.files.upload(
                file=(f"f{index}.bin", io.BytesIO(data), "application/octet-stream"),
                file_name=f"f{index}.bin",
                folder=f"/sdk/{round_}",
                use_unique_file_name=False,
                overwrite_file=False,
            )

        def with_httpx(round_: int, index: int) -> None:
            response = plain.post(
                f"{base_url}/api/v1/files/upload",
                files={"file": (f"f{index}.bin", io.BytesIO(data), "application/octet-stream")},
                data={
                    "fileName": f"f{index}.bin",
                    "folder": f"/httpx/{round_}",
                    "useUniqueFileName": "false",
                    "overwriteFile": "false",
                },
            )
            response.raise_for_status()

        runners = {"httpx": with_httpx, "sdk": with_sdk, "storage": with_storage}
        # Warm-up: imports, connection pools.
        for runner in runners.values():
            runner(-1, 0)

        # Per upload, interleaved (httpx, SDK, storage, httpx, ...): a busy moment of a
        # shared machine hits every contender alike. Medians shrug off the outliers.
        samples: dict[str, list[float]] = {label: [] for label in runners}
        cpu: dict[str, float] = dict.fromkeys(runners, 0.0)
        for round_ in range(rounds):
            for index in range(files):
                for label, runner in runners.items():
                    started, started_cpu = time.perf_counter(), time.process_time()
                    runner(round_, index)
                    samples[label].append(time.perf_counter() - started)
                    cpu[label] += time.process_time() - started_cpu
        storage.close()
        sdk.close()
        plain.close()

    count = files * rounds
    median = {label: statistics.median(values) for label, values in samples.items()}
    print(
        f"save(): {files} files of {size // 1000} kB x {rounds} rounds, each upload "
        "interleaved with the others"
    )
    print("  median wall time per upload (the server's work included), this process's CPU")
    for label in runners:
        print(
            f"  {label:<8} {median[label] * 1000:6.3f} ms  "
            f"(total {sum(samples[label]):5.2f} s)  CPU {cpu[label] / count * 1000:6.3f} ms"
        )
    for label, mine, baseline, target in (
        ("storage / SDK  ", "storage", "sdk", "  (target <= 1.10x)"),
        ("storage / httpx", "storage", "httpx", ""),
        ("SDK / httpx    ", "sdk", "httpx", ""),
    ):
        print(
            f"  {label} wall {median[mine] / median[baseline]:5.2f}x  "
            f"CPU {cpu[mine] / cpu[baseline]:5.2f}x{target}"
        )


# --- memory --------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:  # noqa: PTH123
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _memory_child(megabytes: int) -> None:
    _configure()
    from django.core.files.base import ContentFile
    from django.core.files.uploadedfile import TemporaryUploadedFile

    from django_imagekit_storage.storage import ImageKitStorage

    base_url, url_endpoint = sys.argv[-2], sys.argv[-1]
    storage = ImageKitStorage(
        private_key=PRIVATE_KEY,
        url_endpoint=url_endpoint,
        base_url=base_url,
        upload_timeout=300,
    )
    size = megabytes * 1024 * 1024
    upload = TemporaryUploadedFile("big.bin", "application/octet-stream", size, None)
    chunk = os.urandom(1024 * 1024)
    for _ in range(megabytes):
        upload.write(chunk)
    upload.flush()
    # Warm up: the SDK imported, the client created, a connection open.
    storage.save("warm.bin", ContentFile(b"warm"))
    before = _status_kib("VmRSS")
    # Reset the peak (VmHWM) to the current resident size (Linux >= 4.0).
    with open("/proc/self/clear_refs", "w") as clear_refs:  # noqa: PTH123
        clear_refs.write("5")
    started = time.perf_counter()
    name = storage.save("big.bin", upload)
    elapsed = time.perf_counter() - started
    peak = _status_kib("VmHWM")
    upload.close()
    storage.close()
    growth = (peak - before) / 1024
    print(f"memory: saving a {megabytes} MB TemporaryUploadedFile as {name!r} in {elapsed:.1f} s")
    print(f"  resident before {before / 1024:7.1f} MB, peak during save {peak / 1024:7.1f} MB")
    print(f"  growth {growth:6.1f} MB = {growth / megabytes:.3f}x the file size  (target < 32 MB)")


def bench_memory(megabytes: int = 200) -> None:
    with stand_in_server() as (base_url, url_endpoint):
        # A fresh process: nothing measured before has inflated its heap.
        subprocess.run(
            [sys.executable, __file__, "memory-child", str(megabytes), base_url, url_endpoint],
            check=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "which", nargs="?", default="all", choices=["all", "url", "save", "memory", "memory-child"]
    )
    parser.add_argument("rest", nargs="*")
    args = parser.parse_args()
    if args.which == "memory-child":
        _memory_child(int(args.rest[0]))
        return
    if args.which in {"all", "url"}:
        bench_url()
    if args.which in {"all", "save"}:
        bench_save()
    if args.which in {"all", "memory"}:
        bench_memory()


if __name__ == "__main__":
    main()

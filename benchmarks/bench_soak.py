"""Load and soak (issue 8): threads sharing one ImageKitStorage run save/url/exists/delete
cycles against the stand-in server, with a share of the requests fault-injected. exists()
is asked of a second storage (as another process would ask), so it really searches.

    python benchmarks/bench_soak.py                       # 4 threads, 2,000 cycles, 1 % faults
    python benchmarks/bench_soak.py --cycles 500 --threads 8 --fault-rate 0.02

The same workload runs twice: first clean (the baseline), then with faults: before an API
operation, with a probability chosen so that about ``--fault-rate`` of all requests fail, the
next request to its route gets 429 (``Retry-After: 0``), 500, 502, 503 or 504, or its
connection is dropped (before or after the server processed it). The storage runs with its
defaults (``max_retries=2``, backoff from 0.5 s), so each fault costs the caller a wait.

Printed: throughput (and the faulted run's ratio to the baseline), p50/p99 latency per
operation, errors (must be 0), and resident memory after the 500th and the last cycle (growth
must stay under 20 MB: no leak). Exit status 1 if either promise is broken.

The server runs in this process (its fault injection is an in-process API); its request log
is cleared as the run goes, so that its growth is not counted as ours.
"""

from __future__ import annotations

import argparse
import gc
import logging
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import django
from django.conf import settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from django_imagekit_storage.storage import ImageKitStorage
    from django_imagekit_storage.testing import FakeImageKitServer, Route

PRIVATE_KEY = "private_soak_benchmark_key"
MEMORY_LIMIT_MB = 20.0
OPERATIONS = ("save", "url", "exists", "delete")
# The route each API operation's requests go to first (save may add a search).
ROUTE: dict[str, Route] = {"save": "upload", "exists": "list", "delete": "delete"}


def _configure() -> None:
    if not settings.configured:
        settings.configure(USE_TZ=True, MEDIA_ROOT=tempfile.gettempdir())
        django.setup()


def _rss_mb() -> float:
    """Resident memory of this process, in MB (Linux; the peak elsewhere)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _inject(server: FakeImageKitServer, route: Route, chooser: random.Random) -> str:
    kind = chooser.choice(["429", "500", "502", "503", "504", "drop", "drop-after"])
    if kind == "429":
        server.fail(route, 429, headers={"Retry-After": "0"})
    elif kind.startswith("drop"):
        server.drop(route, after_processing=kind == "drop-after")
    else:
        server.fail(route, int(kind))
    return kind


@dataclass
class Result:
    cycles: int
    seconds: float
    latencies: dict[str, list[float]]
    errors: list[str]
    faults: dict[str, int]
    #: Requests the server received, per route.
    requests: Counter[str | None]
    rss_mb: dict[int, float] = field(default_factory=dict)


def run(
    server: FakeImageKitServer,
    *,
    cycles: int,
    threads: int,
    fault_probability: float = 0.0,
    fault_operations: tuple[str, ...] = (),
    seed: int = 0,
) -> Result:
    from django.core.files.base import ContentFile

    from django_imagekit_storage.storage import ImageKitStorage

    server.reset()
    options = {
        "private_key": server.private_key,
        "url_endpoint": server.url_endpoint,
        "base_url": server.base_url,
    }
    storage = ImageKitStorage(**options)
    # exists() asks a second storage, as another process would: the saving storage knows
    # its own saves from its cache, and the search path must be soaked too.
    reader = ImageKitStorage(**options)
    lock = threading.Lock()
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    faults: dict[str, int] = defaultdict(int)
    rss: dict[int, float] = {}
    done = 0
    requests: Counter[str | None] = Counter()
    checkpoints = {min(500, cycles), cycles}

    def timed(operation: str, call: Callable[[], object], chooser: random.Random) -> object:
        if operation in fault_operations and chooser.random() < fault_probability:
            kind = _inject(server, ROUTE[operation], chooser)
            with lock:
                faults[kind] += 1
        started = time.perf_counter()
        value = call()
        elapsed = time.perf_counter() - started
        with lock:
            latencies[operation].append(elapsed)
        return value

    def cycle(storage: ImageKitStorage, name: str, data: bytes, chooser: random.Random) -> None:
        saved = str(timed("save", lambda: storage.save(name, ContentFile(data)), chooser))
        url = str(timed("url", lambda: storage.url(saved), chooser))
        if not url.startswith(server.url_endpoint):
            raise AssertionError(f"url({saved!r}) is {url!r}")
        if not timed("exists", lambda: reader.exists(saved), chooser):
            raise AssertionError(f"{saved!r} does not exist after save()")
        if server.files.get(f"/{saved}") is None or server.files[f"/{saved}"].data != data:
            raise AssertionError(f"{saved!r} is not stored with the saved bytes")
        timed("delete", lambda: storage.delete(saved), chooser)

    def work(thread: int) -> None:
        nonlocal done
        chooser = random.Random(seed * 1000 + thread)
        for index in range(thread, cycles, threads):
            data = chooser.randbytes(chooser.randint(1_000, 8_000))
            try:
                cycle(storage, f"soak/t{thread}/f{index}.bin", data, chooser)
            except Exception as error:  # noqa: BLE001 - every failure is counted and shown
                with lock:
                    errors.append(f"cycle {index}: {type(error).__name__}: {error}")
            with lock:
                done += 1
                finished = done
                if finished % 100 == 0:
                    # The stand-in's request log is not ours to count as a leak.
                    requests.update(request.route for request in server.requests)
                    server.clear_requests()
            if finished in checkpoints:
                gc.collect()
                with lock:
                    rss[finished] = _rss_mb()

    # Untimed: the first call creates the SDK client and its connection pool.
    storage.delete(storage.save("soak/warm-up.bin", ContentFile(b"warm")))
    server.clear_requests()
    started = time.perf_counter()
    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    storage.close()
    reader.close()
    requests.update(request.route for request in server.requests)
    return Result(cycles, seconds, dict(latencies), errors, dict(faults), requests, rss)


def _ms(values: list[float], quantile: int) -> float:
    if len(values) < 2:
        return values[0] * 1000 if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[quantile - 1] * 1000


def report(label: str, result: Result, baseline: Result | None) -> None:
    rate = result.cycles / result.seconds
    ratio = (
        f" ({rate / (baseline.cycles / baseline.seconds):.2f}x the clean run)" if baseline else ""
    )
    print(
        f"\n{label}: {result.cycles} cycles in {result.seconds:.1f} s, {rate:.0f} cycles/s{ratio}"
    )
    injected = sum(result.faults.values())
    total = sum(result.requests.values())
    share = injected / total if total else 0.0
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(result.faults.items()))
    print(f"  requests {total}, faults injected {injected} ({share:.2%}): {kinds or 'none'}")
    for operation in OPERATIONS:
        values = result.latencies.get(operation, [])
        print(
            f"  {operation:<7} p50 {_ms(values, 50):7.2f} ms   p99 {_ms(values, 99):7.2f} ms"
            f"   max {max(values, default=0) * 1000:7.1f} ms"
        )
    print(f"  errors {len(result.errors)}")
    for error in result.errors[:5]:
        print(f"    {error}")
    marks = sorted(result.rss_mb)
    text = ", ".join(f"{result.rss_mb[mark]:.1f} MB after cycle {mark}" for mark in marks)
    print(f"  resident memory {text}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--fault-rate", type=float, default=0.01, help="share of requests")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--verbose", action="store_true", help="show the client's retry log")
    args = parser.parse_args(argv)
    # Retries are expected here; a final failure (ERROR) is still shown.
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.ERROR)
    _configure()
    from django_imagekit_storage.testing import FakeImageKitServer

    with FakeImageKitServer(private_key=PRIVATE_KEY) as server:
        clean = run(server, cycles=args.cycles, threads=args.threads)
        report("clean (baseline)", clean, None)
        # The clean run's requests per cycle turn a share of requests into a probability
        # per operation, counting only the operations that reach the server.
        reaching = [op for op, route in ROUTE.items() if clean.requests[route] >= clean.cycles / 2]
        per_cycle = sum(clean.requests.values()) / clean.cycles
        probability = min(1.0, args.fault_rate * per_cycle / max(1, len(reaching)))
        faulted = run(
            server,
            cycles=args.cycles,
            threads=args.threads,
            fault_probability=probability,
            fault_operations=tuple(reaching),
            seed=args.seed,
        )
        report(f"with faults ({args.fault_rate:.0%} of requests)", faulted, clean)
    marks = sorted(faulted.rss_mb)
    growth = faulted.rss_mb[marks[-1]] - faulted.rss_mb[marks[0]]
    print(f"\nmemory growth from cycle {marks[0]} to {marks[-1]}: {growth:+.1f} MB")
    failed = bool(clean.errors or faulted.errors) or growth >= MEMORY_LIMIT_MB
    print("FAILED" if failed else f"OK: no errors, growth under {MEMORY_LIMIT_MB:g} MB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

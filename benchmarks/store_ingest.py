"""Ingest: N input rows into each checkpoint store, side by side.

``python -m benchmarks.store_ingest --rows N [--actions A] [--postgres URL]`` ingests N
synthetic rows, shaped as the CSV source makes them (email keys spread over four
accounts, a license column on half the rows, one duplicate in 500, one rejected row
in 1000), into a new SQLite checkpoint and into a new job of a PostgreSQL database
(``BULKCHIME_TEST_POSTGRES_URL``, default ``postgresql://postgres@127.0.0.1:5432/test``).
Each backend runs in a process of its own, so that its peak RSS is its own; the rows
come from a generator, as a file's do, as tuples (``ItemRows``), as the engine hands
them over (``benchmarks.ingest`` measures the whole path, file to store). It prints
seconds, rows/s and peak RSS for each, and writes
``benchmarks/results/store_ingest.json``. The PostgreSQL job is deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._harness import print_table, write_result

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def rows(count: int) -> Iterator[Any]:
    """*count* items as a CSV of emails makes them, generated as they are read: tuples in
    :class:`~bulkchime.store.ItemRecord`'s field order, as the engine hands them over."""
    for n in range(count):
        key = f"user{n if n % 500 else n - 1:08d}@example.com"  # every 500th repeats
        rejection = "not an email address" if n % 1000 == 999 else None
        fields = {"license": "Pro"} if n % 2 else None
        yield (n + 2, key, key.title(), f"acct-{n % 4}", key, None, fields, rejection, None, None)


async def ingest_into(location: str, count: int, actions: list[str]) -> dict[str, Any]:
    """Ingest *count* rows into a new checkpoint at *location*; the figures."""
    from bulkchime.store import open_store
    from bulkchime.store._item_rows import ItemRows

    store = await open_store(location)
    try:
        started = time.perf_counter()
        await store.check_job({"actions": actions, "input": "bench.csv", "input_sha256": "x"})
        stored = await store.ingest(actions, ItemRows(rows(count)))
        seconds = time.perf_counter() - started
        counts = await store.counts()
    finally:
        await store.close(discard=location.startswith("postgresql://"))
    return {
        "rows": count,
        "stored": stored,
        "seconds": seconds,
        "rows_per_second": count / seconds if seconds else 0.0,
        "tasks": counts,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def child(backend: str, count: int, actions: list[str], postgres_url: str) -> None:
    """One backend's run, in this process; prints its figures as JSON."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bulkchime-bench-") as directory:
            location = str(Path(directory) / "bench.ckpt.sqlite")
            figures = asyncio.run(ingest_into(location, count, actions))
    else:
        job = f"bench-ingest-{uuid.uuid4().hex[:8]}"
        separator = "&" if "?" in postgres_url else "?"
        figures = asyncio.run(ingest_into(f"{postgres_url}{separator}job={job}", count, actions))
    print(json.dumps(figures))


def run_backend(backend: str, count: int, actions: list[str], postgres_url: str) -> dict[str, Any]:
    """Run :func:`child` for *backend* in a new process; its figures."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.store_ingest",
        "--child",
        backend,
        "--rows",
        str(count),
        "--actions",
        ",".join(actions),
        "--postgres",
        postgres_url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{backend} ingest failed:\n{done.stderr}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return {"backend": backend, **figures}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.store_ingest")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--actions", default="suspend", help="comma-separated action phases")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BULKCHIME_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL),
    )
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--child", choices=["sqlite", "postgres"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    actions = args.actions.split(",")
    if args.child:
        child(args.child, args.rows, actions, args.postgres)
        return
    results = [
        run_backend(backend, args.rows, actions, args.postgres)
        for backend in args.backends.split(",")
    ]
    print_table(
        f"Ingest of {args.rows:,} rows ({len(actions)} action phase(s))",
        ["store", "seconds", "rows/s", "items stored", "peak RSS (MB)"],
        [
            [
                r["backend"],
                r["seconds"],
                f"{r['rows_per_second']:,.0f}",
                r["stored"],
                f"{r['peak_rss_mb']:.0f}",
            ]
            for r in results
        ],
    )
    path = write_result("store_ingest", {"rows": args.rows, "actions": actions, "results": results})
    print(f"results: {path}")


if __name__ == "__main__":
    main()

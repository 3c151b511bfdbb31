"""Ingest alone: a 1M-row CSV read, checked and stored by the engine as a user runs it.

``python -m benchmarks.ingest [--rows N] [--backends sqlite,postgres] [--key email]
[--before DIR] [--rounds K]``

It writes an input of N rows (one column of emails, as ``suspend`` takes: mixed case,
one malformed address in 1000, one repeated in 500; or of user ids with ``--key
user_id``), then runs ``bulkchime suspend --account ACCOUNT --input FILE --checkpoint
…`` in a process of its own and stops it (SIGKILL) as soon as its log says
``ingested``: the figure is the time from the process's start to that event (the real
CLI path: imports, the job, the checkpoint, parse, validation, dedupe, store), and the
process's peak RSS then (its ``VmHWM``, read from ``/proc`` before the kill). Nothing
is sent: the input names its users by a file, which is read before any request, and
the endpoint is a closed port. A one-row input measures the start-up alone, so that
``ingest s`` is what the rows cost.

With ``--before DIR`` (another checkout, e.g. ``git worktree add ../before <commit>``)
its engine runs the same input in the same run, the two versions alternating, and the
table gives after ÷ before. PostgreSQL: ``BULKCHIME_TEST_POSTGRES_URL``, default
``postgresql://postgres@127.0.0.1:5432/test``; each run is a new job, deleted after.
Results: ``benchmarks/results/ingest.json`` (``ingest-user_id.json`` for user ids).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ._harness import (
    ENGINE_CODE_VARIABLE,
    ROOT,
    bench_env,
    engine_command,
    print_table,
    write_result,
)

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
#: The account every row belongs to (``--account``); nothing is sent to it.
ACCOUNT = "a1b2c3d4-0000-4000-8000-000000000001"
#: A closed port: the engine stops before its first request in any case.
DEAD_ENDPOINT = "http://127.0.0.1:9"


def write_input(path: Path, rows: int, key: str) -> Path:
    """*rows* rows of *key*s, as a pipeline exports them, with a few bad and repeated."""
    rng = random.Random(13)
    value = ""
    with path.open("w", newline="") as out:
        out.write(key + "\n")
        for n in range(rows):
            if n % 500 != 499:  # one in 500 repeats the row before
                if key == "email":
                    value = f"{'User' if n % 3 else 'user'}{n:08d}@Example.com"
                else:
                    value = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            if n % 1000 == 998:
                value = value.replace("@", " at ").replace("-", " ")  # malformed
            out.write(value + "\n")
    return path


def _checkpoint(backend: str, workdir: Path, postgres_url: str) -> str:
    if backend == "sqlite":
        return str(workdir / f"ingest-{uuid.uuid4().hex[:8]}.ckpt.sqlite")
    separator = "&" if "?" in postgres_url else "?"
    return f"{postgres_url}{separator}job=bench-ingest-{uuid.uuid4().hex[:8]}"


def run_once(
    source: Path, key: str, checkpoint: str, workdir: Path, tree: Path | None, timeout: float
) -> dict[str, Any]:
    """One engine process, up to its ``ingested`` event; its figures."""
    env = bench_env()
    if tree is not None:  # another version's engine, as benchmarks.compare runs it
        env["PYTHONPATH"] = str(tree) + os.pathsep + env["PYTHONPATH"]
    args = ["suspend", "--account", ACCOUNT, "--input", str(source), "--key", key,
            "--checkpoint", checkpoint, "--endpoint-url", DEAD_ENDPOINT, "--log-format", "json",
            "--report", str(workdir / "report.jsonl")]  # fmt: skip
    log_path = workdir / f"engine-{uuid.uuid4().hex[:8]}.log"
    with log_path.open("wb") as log:
        started = time.time()
        process = subprocess.Popen(
            engine_command(args), cwd=workdir, stdout=subprocess.DEVNULL, stderr=log, env=env
        )
        try:
            event, peak_kb = _wait_for_ingested(process, log_path, started + timeout)
        finally:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(timeout=30)
    if event is None:
        tail = log_path.read_text(errors="replace")[-1500:]
        raise SystemExit(f"the engine ended (exit {process.returncode}) before ingesting:\n{tail}")
    stamp = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
    log_path.unlink(missing_ok=True)
    return {"seconds": stamp - started, "peak_rss_mb": peak_kb / 1024, "items": event["items"]}


def _wait_for_ingested(
    process: subprocess.Popen[bytes], log_path: Path, deadline: float
) -> tuple[dict[str, Any] | None, int]:
    """The ``ingested`` event and the process's VmHWM (kB) when it appeared."""
    with log_path.open("rb") as log:
        pending = b""
        while time.time() < deadline:
            pending += log.read()
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if b'"ingested"' not in line:
                    continue
                event = json.loads(line)
                if event.get("event") == "ingested":
                    return event, _vm_hwm_kb(process.pid)
            if process.poll() is not None:
                return None, 0
            time.sleep(0.01)
    raise TimeoutError("the engine did not ingest in time")


def _vm_hwm_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _discard(checkpoint: str) -> None:
    """Delete a PostgreSQL job (a SQLite file goes with the temporary directory)."""
    if not checkpoint.startswith("postgresql://"):
        return

    async def discard() -> None:
        from bulkchime.store import open_store

        store = await open_store(checkpoint)
        await store.close(discard=True)

    asyncio.run(discard())


def measure(
    versions: dict[str, Path | None],
    backends: Sequence[str],
    rows: int,
    key: str,
    rounds: int,
    postgres_url: str,
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Each version on each backend, *rounds* times, the versions' order alternating."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        name: {backend: [] for backend in backends} for name in versions
    }
    with tempfile.TemporaryDirectory(prefix="bulkchime-bench-ingest-") as temp:
        workdir = Path(temp)
        big = write_input(workdir / f"users-{rows}.csv", rows, key)
        one = write_input(workdir / "users-1.csv", 1, key)
        timeout = 120 + rows * 0.001
        for number in range(rounds):
            order = list(versions) if number % 2 == 0 else list(versions)[::-1]
            for backend in backends:
                for name in order:
                    figures: dict[str, Any] = {}
                    for label, source in (("startup", one), ("run", big)):
                        checkpoint = _checkpoint(backend, workdir, postgres_url)
                        try:
                            result = run_once(
                                source, key, checkpoint, workdir, versions[name], timeout
                            )
                        finally:
                            _discard(checkpoint)
                        figures[label] = result
                    run = {
                        **figures["run"],
                        "startup_seconds": figures["startup"]["seconds"],
                        "ingest_seconds": figures["run"]["seconds"] - figures["startup"]["seconds"],
                    }
                    print(
                        f"[ingest] {name} {backend}: {run['seconds']:.2f} s "
                        f"(start-up {run['startup_seconds']:.2f} s), "
                        f"peak {run['peak_rss_mb']:.1f} MB",
                        flush=True,
                    )
                    runs[name][backend].append(run)
    return runs


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated")
    parser.add_argument("--key", choices=["email", "user_id"], default="email")
    parser.add_argument("--before", type=Path, help="another checkout, measured alongside")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each version (median)")
    parser.add_argument(
        "--postgres", default=os.environ.get("BULKCHIME_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    )
    options = parser.parse_args(argv)
    os.environ.pop(ENGINE_CODE_VARIABLE, None)
    versions: dict[str, Path | None] = {"this": None}
    if options.before:
        versions = {"before": options.before.resolve(), "this": None}
    backends = options.backends.split(",")
    runs = measure(versions, backends, options.rows, options.key, options.rounds, options.postgres)

    def median(name: str, backend: str, figure: str) -> float:
        return statistics.median(run[figure] for run in runs[name][backend])

    rows = []
    for backend in backends:
        for name in versions:
            row = [backend, name]
            for figure in ("seconds", "ingest_seconds", "startup_seconds"):
                row.append(f"{median(name, backend, figure):.2f}")
            row.append(f"{max(run['peak_rss_mb'] for run in runs[name][backend]):.1f}")
            if name != "before" and "before" in versions:
                for figure in ("seconds", "ingest_seconds"):
                    ratio = median(name, backend, figure) / median("before", backend, figure)
                    row.append(f"{ratio:.3f}")
            else:
                row += ["", ""]
            rows.append(row)
    table = print_table(
        f"ingest of {options.rows:,} rows (key {options.key}), start to `ingested`: "
        f"median of {options.rounds}, this = {ROOT}",
        ["store", "engine", "seconds", "ingest s", "start-up s", "peak RSS MB (max)",
         "seconds after/before", "ingest s after/before"],
        rows,
    )  # fmt: skip
    data = {
        "rows": options.rows,
        "key": options.key,
        "before": str(options.before) if options.before else None,
        "table": table,
        "runs": runs,
    }
    name = "ingest" if options.key == "email" else f"ingest-{options.key}"
    print(f"results: {write_result(name, data)}")
    return data


if __name__ == "__main__":
    main()

"""The engine beside what people write instead, against the same throttled emulator.

Peers, each migrating the same number of users (BatchUpdateUser, 20 a request) on a
fresh emulator with a server bucket of R requests/s (burst R):

* **(a) boto3 loop**: sequential ``batch_update_user`` calls with boto3's default
  retries (legacy mode: up to 5 attempts, retries 429 blindly; the standard and
  adaptive modes would not retry Chime's 429 at all). A batch that still fails is
  logged and skipped; ``UserErrors`` inside a 200 are not looked at.
* **(b) gather + tenacity**: ``asyncio.gather`` over every batch, a semaphore of 8,
  tenacity retrying 429/5xx with full jitter (the engine's own backoff: 0.25 s base,
  20 s cap, 8 attempts), no rate limiter. The SDK's retries are off, so tenacity is
  the only retry layer (as the engine's design asks); ``UserErrors`` are not looked at.
* **(c) the engine**: ``bulkchime update-license`` in its own process, ``--rate R
  --burst R/4`` (and again with no rate given: adaptive from its default).

Two server settings: 429s only, and 429s plus 1% of users answered with a per-user
``Throttled`` error inside a 200 (what a loaded service does; nobody but the engine
retries those). Users lost are counted by the emulator (distinct users whose license
was set), not by what each script believes.

Throughput is measured by the server for everyone: batch requests accepted per second
between the first request and the last (polled every 50 ms), as a share of R.

Usage: ``python -m benchmarks.peers [--quick] [--rate R]``
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._harness import (
    EmulatorProcess,
    StatsPoller,
    print_table,
    read_column,
    run_engine,
    slice_csv,
    use_bench_env,
    user_ids_csv,
    write_result,
)

OPERATION = "BatchUpdateUser"
USERS_PER_BATCH = 20


@dataclass(frozen=True)
class Workload:
    """What the peers send: one batch operation, its batch size, and its parameters."""

    operation: str
    per_batch: int
    #: The boto3 / aiobotocore method name.
    method: str
    #: The ``bulkchime`` command that sends it, with its parameters.
    command: tuple[str, ...]

    def params(self, account_id: str, batch: list[str]) -> dict[str, Any]:
        if self.operation == "BatchSuspendUser":
            return {"AccountId": account_id, "UserIdList": batch}
        items = [{"UserId": u, "LicenseType": "Pro"} for u in batch]
        return {"AccountId": account_id, "UpdateUserRequestItems": items}


#: License migration (the default): BatchUpdateUser, 20 users a request.
MIGRATE = Workload(
    OPERATION, USERS_PER_BATCH, "batch_update_user", ("update-license", "--license", "Pro")
)
#: Offboarding: BatchSuspendUser, 50 users a request.
SUSPEND = Workload("BatchSuspendUser", 50, "batch_suspend_user", ("suspend",))
#: No peer may run longer than this many seconds (each stops by itself).
PEER_TIMEOUT = 300.0


def _batches(user_ids: list[str], size: int = USERS_PER_BATCH) -> list[list[str]]:
    return [user_ids[i : i + size] for i in range(0, len(user_ids), size)]


def boto3_loop(
    url: str, account_id: str, user_ids: list[str], workload: Workload = MIGRATE
) -> dict[str, Any]:
    """(a) A sequential loop with boto3's defaults."""
    import boto3  # type: ignore[import-untyped]
    from botocore.exceptions import ClientError

    client = boto3.client("chime", endpoint_url=url, region_name="us-east-1")
    failed_batches = 0
    deadline = time.monotonic() + PEER_TIMEOUT
    send = getattr(client, workload.method)
    for batch in _batches(user_ids, workload.per_batch):
        if time.monotonic() > deadline:
            failed_batches += 1
            continue
        try:
            send(**workload.params(account_id, batch))
        except ClientError:
            failed_batches += 1  # what such scripts do: log it and move on
    return {"failed_batches": failed_batches}


async def _gather_tenacity(
    url: str, account_id: str, user_ids: list[str], workload: Workload
) -> dict[str, Any]:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session
    from botocore.exceptions import ClientError
    from tenacity import (
        AsyncRetrying,
        retry_if_exception,
        stop_after_attempt,
        wait_random_exponential,
    )

    def retryable(error: BaseException) -> bool:
        if not isinstance(error, ClientError):
            return False
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return status == 429 or status >= 500

    session = get_session()
    semaphore = asyncio.Semaphore(8)
    failed_batches = 0
    config = AioConfig(retries={"total_max_attempts": 1}, max_pool_connections=10)
    async with session.create_client(
        "chime", endpoint_url=url, region_name="us-east-1", config=config
    ) as client:

        async def send(batch: list[str]) -> None:
            nonlocal failed_batches
            try:
                async for attempt in AsyncRetrying(
                    wait=wait_random_exponential(multiplier=0.25, max=20),
                    stop=stop_after_attempt(8),
                    retry=retry_if_exception(retryable),
                    reraise=True,
                ):
                    with attempt:
                        async with semaphore:
                            await getattr(client, workload.method)(
                                **workload.params(account_id, batch)
                            )
            except ClientError:
                failed_batches += 1

        await asyncio.wait_for(
            asyncio.gather(*(send(b) for b in _batches(user_ids, workload.per_batch))),
            PEER_TIMEOUT,
        )
    return {"failed_batches": failed_batches}


def gather_tenacity(
    url: str, account_id: str, user_ids: list[str], workload: Workload = MIGRATE
) -> dict[str, Any]:
    """(b) asyncio.gather + tenacity + a semaphore, no limiter."""
    return asyncio.run(_gather_tenacity(url, account_id, user_ids, workload))


def engine_runner(
    account_id: str, ids: Path, workdir: Path, extra: list[str], workload: Workload = MIGRATE
) -> Callable[[EmulatorProcess], dict[str, Any]]:
    """(c) ``bulkchime`` sending *workload* to the users in *ids*, with *extra* options."""

    def run(emulator: EmulatorProcess) -> dict[str, Any]:
        args = [*workload.command, "--account", account_id, "--input", str(ids),
                "--key", "user_id", "--endpoint-url", emulator.url,
                "--checkpoint", str(workdir / "run.ckpt.sqlite"),
                "--report", str(workdir / "report.jsonl"), *extra]  # fmt: skip
        outcome = run_engine(args, workdir=workdir, timeout=PEER_TIMEOUT)
        return {"exit_code": outcome.returncode, "timed_out": outcome.timed_out}

    return run


def _server_window(samples: list[Any]) -> tuple[float, float]:
    """First and last moment the server's request counter moved."""
    final = samples[-1].requests
    first = next(s.t for s in samples if s.requests > 0)
    last = next(s.t for s in samples if s.requests == final)
    return first, last


def run_peer(
    name: str,
    run: Callable[[EmulatorProcess], dict[str, Any]],
    *,
    rate: float,
    users: int,
    user_error_rate: float = 0.0,
    server: dict[str, float] | None = None,
    latency_ms: float = 0.0,
    workload: Workload = MIGRATE,
) -> dict[str, Any]:
    """Run one peer on a fresh emulator (bucket *rate*, burst *rate*) with the *server*
    settings (``error_rate``, ``user_error_rate``) and *latency_ms*; what the server saw."""
    settings = {"user_error_rate": user_error_rate, **(server or {})}
    settings = {name: value for name, value in settings.items() if value}
    with EmulatorProcess(
        users=max(users, 1000), rate=rate, burst=math.ceil(rate), latency_ms=latency_ms
    ) as emulator:
        if settings:
            emulator.configure(**settings)
        with StatsPoller(emulator, workload.operation, interval=0.05) as poller:
            start = time.monotonic()
            extra = run(emulator)
            wall = time.monotonic() - start
            time.sleep(0.2)
        stats = emulator.stats()
    sent = stats["requests"][workload.operation]
    throttled = stats["throttled"]
    served = sent - throttled
    first, last = _server_window(poller.samples)
    seconds = max(last - first, 1e-9)
    done = stats["effects"][workload.operation]["distinct"]
    return {
        "peer": name,
        "user_error_rate": user_error_rate,
        "server": {**settings, "latency_ms": latency_ms},
        "users": users,
        "requests": sent,
        "served": served,
        "throttled": throttled,
        "throttled_share": round(throttled / max(sent, 1), 4),
        "user_throttled": stats.get("user_throttled", 0),
        "seconds": round(seconds, 3),
        "wall_seconds": round(wall, 3),
        "served_share_of_R": round(served / seconds / rate, 4),
        "users_per_second": round(done / seconds, 2),
        "users_share_of_R": round(done / seconds / (rate * workload.per_batch), 4),
        "users_lost": users - done,
        **extra,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 batches per peer, one setting")
    parser.add_argument("--rate", type=float, default=20.0, help="the server's R (default 20)")
    options = parser.parse_args(argv)
    rate = options.rate
    batches = 200 if options.quick else 400
    users = batches * USERS_PER_BATCH
    use_bench_env()
    (account_id,), all_ids = user_ids_csv(max(users, 1000))
    user_ids = read_column(all_ids, users)
    burst = max(2, math.ceil(rate / 4))
    results: list[dict[str, Any]] = []
    settings = [0.0] if options.quick else [0.0, 0.01]
    with tempfile.TemporaryDirectory(prefix="bulkchime-bench-peers-") as temp:
        ids_path = slice_csv(all_ids, Path(temp) / "users.csv", users)

        def engine(extra: list[str], tag: str) -> Callable[[EmulatorProcess], dict[str, Any]]:
            return engine_runner(
                account_id, ids_path, Path(temp) / tag, ["--concurrency", "8", *extra]
            )

        for number, user_error_rate in enumerate(settings):
            peers: list[tuple[str, Callable[[EmulatorProcess], dict[str, Any]]]] = [
                ("(a) boto3 loop, default retries",
                 lambda e: boto3_loop(e.url, account_id, user_ids)),
                ("(b) gather + tenacity, semaphore 8",
                 lambda e: gather_tenacity(e.url, account_id, user_ids)),
                (f"(c) engine --rate {rate:g} --burst {burst}",
                 engine(["--rate", f"{rate:g}", "--burst", str(burst)], f"c{number}")),
                ("(c) engine, no rate given", engine([], f"d{number}")),
            ]  # fmt: skip
            for name, peer in peers:
                print(f"[peers] {name} (user_error_rate={user_error_rate}) ...", flush=True)
                results.append(
                    run_peer(name, peer, rate=rate, users=users, user_error_rate=user_error_rate)
                )
    tables = []
    for user_error_rate in settings:
        rows = [
            [
                r["peer"],
                r["served_share_of_R"],
                r["users_share_of_R"],
                f"{r['throttled']} ({r['throttled_share']:.1%})",
                r["users_lost"],
                f"{r['seconds']:.1f}",
            ]
            for r in results
            if r["user_error_rate"] == user_error_rate
        ]
        title = f"peers: {users} users, server bucket R = {rate:g}/s" + (
            f", {user_error_rate:.0%} per-user Throttled" if user_error_rate else ", 429s only"
        )
        tables.append(
            print_table(
                title,
                ["peer", "served req/s ÷ R", "users/s ÷ 20R", "429s", "users lost", "seconds"],
                rows,
            )
        )
    for user_error_rate in settings:
        group = [r for r in results if r["user_error_rate"] == user_error_rate]
        naive, engine_run = group[1], group[2]
        ratio = naive["throttled"] / max(engine_run["throttled"], 1)
        speed = engine_run["served_share_of_R"] / naive["served_share_of_R"]
        print(
            f"429s (b)/(c) at user_error_rate={user_error_rate}: {ratio:.1f}x; "
            f"throughput (c)/(b): {speed:.3f}"
        )
    data = {"rate": rate, "users": users, "tables": tables, "peers": results}
    path = write_result("peers" + ("-quick" if options.quick else ""), data)
    print(f"results: {path}")
    return data


if __name__ == "__main__":
    main()

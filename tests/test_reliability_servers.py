"""Slow and broken servers: every fault is classified and reported, none crashes the run.

The CLI runs as a user runs it, in a subprocess, so that its exit code and stderr are
the real ones (a crash shows as a ``Traceback``). It talks to :class:`BrokenServer`, a
small loopback aiohttp server that answers the operations a case breaks in its own way
and passes every other request through to a real emulator, or to an emulator that is
killed and started again on the same port in the middle of the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from bulkchime.emulator import (
    STATE_KEY,
    Account,
    EmulatorConfig,
    EmulatorState,
    RunningEmulator,
    create_app,
    running_emulator,
)

from .conftest import read_report

pytestmark = pytest.mark.slow

#: Users in each job: two batches of update-license.
USERS = 30

#: How a case answers one request of the operation it breaks: the request and how many
#: of that operation came before it. ``None`` passes the request on to the emulator.
Answer = Callable[[web.Request, int], Awaitable[web.StreamResponse | None]]

_HOP_BY_HOP = frozenset(
    {"connection", "content-length", "transfer-encoding", "keep-alive", "date", "server"}
)


def operation_of(request: web.Request) -> str:
    """The Chime operation a request is for (only those the engine sends here)."""
    path = request.path.rstrip("/")
    if path.endswith("/users"):
        if request.method == "GET":
            return "ListUsers"
        operations = {"suspend": "BatchSuspendUser", "add": "InviteUsers"}
        return operations.get(request.query.get("operation", ""), "BatchUpdateUser")
    if request.method == "GET" and path.rpartition("/")[0].endswith("/accounts"):
        return "GetAccount"
    return f"{request.method} {path}"


class BrokenServer:
    """A loopback server that breaks some operations and proxies the rest upstream."""

    def __init__(self, upstream: str, answers: dict[str, Answer]) -> None:
        self.upstream = upstream
        self.answers = answers
        #: Requests seen, by operation.
        self.seen: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A short shutdown: a request that hangs on purpose must not hold up the test.
        self._runner = web.AppRunner(app, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._http = aiohttp.ClientSession(auto_decompress=False)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        operation = operation_of(request)
        before = self.seen[operation]
        self.seen[operation] += 1
        body = await request.read()
        answer = self.answers.get(operation)
        if answer is not None:
            response = await answer(request, before)
            if response is not None:
                return response
        return await self._proxy(request, body)

    async def _proxy(self, request: web.Request, body: bytes) -> web.Response:
        # The client signed this host and these exact bytes: pass them on untouched.
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
        assert self._http is not None
        async with self._http.request(
            request.method,
            URL(self.upstream + request.raw_path, encoded=True),
            headers=headers,
            data=body,
        ) as upstream:
            data = await upstream.read()
            kept = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
            return web.Response(status=upstream.status, body=data, headers=kept)


@dataclass
class Finished:
    """How a CLI process ended."""

    exit_code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


async def run_cli_process(args: list[str], *, timeout: float = 90.0) -> Finished:
    """``python -m bulkchime ARGS`` in a subprocess, with the test's AWS environment."""
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bulkchime",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ),
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except BaseException:  # timed out or cancelled: the process must not outlive the test
        process.kill()
        await process.communicate()
        raise
    assert process.returncode is not None
    return Finished(
        process.returncode, stdout.decode(), stderr.decode(), time.monotonic() - started
    )


@pytest.fixture
async def emulator() -> AsyncIterator[RunningEmulator]:
    async with running_emulator(EmulatorConfig(accounts=1, users_per_account=USERS)) as running:
        for user in running.state.users(running.state.account_ids()[0]):
            user.license_type = "Basic"
        yield running


@pytest.fixture
async def broken() -> AsyncIterator[Callable[..., Awaitable[BrokenServer]]]:
    servers: list[BrokenServer] = []

    async def start(upstream: str, **answers: Answer) -> BrokenServer:
        server = BrokenServer(upstream, answers)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


def _write_input(tmp_path: Path, values: list[str], header: str = "email") -> Path:
    path = tmp_path / "users.csv"
    path.write_text(header + "\n" + "".join(f"{value}\n" for value in values))
    return path


def migration(
    url: str, account: str, source: Path, tmp_path: Path, *options: str, key: str = "email"
) -> list[str]:
    """``update-license`` of *source* to Pro against *url*, reporting into *tmp_path*."""
    return [
        "update-license",
        "--account",
        account,
        "--input",
        str(source),
        "--key",
        key,
        "--license",
        "Pro",
        "--endpoint-url",
        url,
        "--checkpoint",
        str(tmp_path / "job.ckpt.sqlite"),
        "--report",
        str(tmp_path / "job.report.jsonl"),
        "--log-format",
        "json",
        "--rate",
        "200",
        "--concurrency",
        "2",
        *options,
    ]


def _job(emulator: RunningEmulator, tmp_path: Path) -> tuple[str, Path]:
    account = emulator.state.account_ids()[0]
    emails = [u.primary_email for u in emulator.state.users(account)]
    return account, _write_input(tmp_path, emails)


def _assert_no_crash(finished: Finished, tmp_path: Path, *codes: int) -> list[dict[str, Any]]:
    """No traceback, one of the exit codes, and a report that accounts for every user."""
    assert "Traceback" not in finished.stderr, finished.stderr[-3000:]
    assert finished.exit_code in codes, finished.output[-3000:]
    report = read_report(tmp_path / "job.report.jsonl")
    assert len(report) == USERS
    return report


def _licenses(state: EmulatorState) -> dict[str, str]:
    account = state.account_ids()[0]
    return {u.user_id: u.license_type for u in state.users(account)}


# ---------------------------------------------------------------- answers


async def hang(request: web.Request, before: int) -> web.StreamResponse | None:
    """Accept the request and never answer."""
    await asyncio.sleep(3600)
    return None


async def malformed_json(request: web.Request, before: int) -> web.StreamResponse | None:
    return web.Response(status=200, body=b'{"UserErrors": [', content_type="application/json")


async def teapot(request: web.Request, before: int) -> web.StreamResponse | None:
    return web.Response(status=418, text="I'm a teapot")


async def bad_gateway_html(request: web.Request, before: int) -> web.StreamResponse | None:
    html = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    return web.Response(status=502, text=html, content_type="text/html")


async def reset_first_three(request: web.Request, before: int) -> web.StreamResponse | None:
    """Drop the connection without an answer, the first three times."""
    if before >= 3:
        return None
    assert request.transport is not None
    request.transport.close()
    await asyncio.sleep(0.5)
    return web.Response()


async def users_without_ids(request: web.Request, before: int) -> web.StreamResponse | None:
    """A ListUsers page whose users lack ``UserId``."""
    email = request.query.get("user-email", "someone@example.com")
    return web.json_response({"Users": [{"PrimaryEmail": email, "LicenseType": "Basic"}]})


async def no_invites(request: web.Request, before: int) -> web.StreamResponse | None:
    """InviteUsers 201 with an empty body: no ``Invites`` at all."""
    return web.json_response({}, status=201)


# ---------------------------------------------------------------- cases


async def test_a_server_that_never_answers_times_out_and_fails_the_items(
    emulator: RunningEmulator, broken: Callable[..., Awaitable[BrokenServer]], tmp_path: Path
) -> None:
    server = await broken(emulator.url, BatchUpdateUser=hang)
    account, source = _job(emulator, tmp_path)
    args = migration(server.url, account, source, tmp_path, "--timeout", "0.5")

    finished = await run_cli_process([*args, "--max-attempts", "2"])

    report = _assert_no_crash(finished, tmp_path, 1)
    assert {r["status"] for r in report} == {"failed"}
    for record in report:
        assert record["error_code"] == "Timeout", record
        assert record["message"] == "gave up after 2 attempts: no response in time"
        assert record["attempts"] == 2
    assert server.seen["BatchUpdateUser"] == 4  # 2 batches x 2 attempts
    assert finished.seconds < 30
    assert set(_licenses(emulator.state).values()) == {"Basic"}


async def test_a_teapot_is_a_permanent_failure(
    emulator: RunningEmulator, broken: Callable[..., Awaitable[BrokenServer]], tmp_path: Path
) -> None:
    server = await broken(emulator.url, BatchUpdateUser=teapot)
    account, source = _job(emulator, tmp_path)

    finished = await run_cli_process(migration(server.url, account, source, tmp_path))

    report = _assert_no_crash(finished, tmp_path, 1)
    for record in report:
        assert (record["status"], record["error_code"]) == ("failed", "418"), record
        assert record["message"] == "I'm a teapot" and record["attempts"] == 1
    assert server.seen["BatchUpdateUser"] == 2  # not retried


async def test_a_502_html_page_is_retried_then_reported(
    emulator: RunningEmulator, broken: Callable[..., Awaitable[BrokenServer]], tmp_path: Path
) -> None:
    server = await broken(emulator.url, BatchUpdateUser=bad_gateway_html)
    account, source = _job(emulator, tmp_path)
    args = migration(server.url, account, source, tmp_path, "--max-attempts", "3")

    finished = await run_cli_process(args)

    report = _assert_no_crash(finished, tmp_path, 1)
    for record in report:
        assert (record["status"], record["error_code"]) == ("failed", "502"), record
        assert record["message"] == "gave up after 3 attempts: Bad Gateway"
    assert server.seen["BatchUpdateUser"] == 6


async def test_an_invite_answer_without_invites_fails_each_invite(
    emulator: RunningEmulator, broken: Callable[..., Awaitable[BrokenServer]], tmp_path: Path
) -> None:
    server = await broken(emulator.url, InviteUsers=no_invites)
    account = "f0e1d2c3-0000-4000-8000-00000000beef"
    emulator.state.add_account(  # invites go to Team accounts only
        Account(account, "123456789012", "Joiners", "Team", datetime.now(UTC), "Pro", ("Pro",))
    )
    source = _write_input(tmp_path, [f"joiner{i}@example.org" for i in range(USERS)])
    args = migration(server.url, account, source, tmp_path)
    args[0] = "invite"
    del args[args.index("--license") : args.index("--license") + 2]

    finished = await run_cli_process(args)

    report = _assert_no_crash(finished, tmp_path, 1)
    for record in report:
        assert (record["status"], record["error_code"]) == ("failed", "NotInvited"), record
        assert record["message"] == "the service returned no invite"
    assert server.seen["InviteUsers"] == 1  # not idempotent: never resent blindly


async def test_connections_reset_mid_request_are_retried(
    emulator: RunningEmulator, broken: Callable[..., Awaitable[BrokenServer]], tmp_path: Path
) -> None:
    server = await broken(emulator.url, BatchUpdateUser=reset_first_three)
    account, source = _job(emulator, tmp_path)

    finished = await run_cli_process(migration(server.url, account, source, tmp_path))

    report = _assert_no_crash(finished, tmp_path, 0)
    assert {r["status"] for r in report} == {"succeeded"}
    assert set(_licenses(emulator.state).values()) == {"Pro"}
    assert server.seen["BatchUpdateUser"] >= 5  # three resets, then two batches through


async def test_a_malformed_json_body_is_not_taken_for_success(
    emulator: RunningEmulator, broken: Callable[..., Awaitable[BrokenServer]], tmp_path: Path
) -> None:
    server = await broken(emulator.url, BatchUpdateUser=malformed_json)
    account, source = _job(emulator, tmp_path)
    args = migration(server.url, account, source, tmp_path, "--max-attempts", "2")

    finished = await run_cli_process(args)

    report = _assert_no_crash(finished, tmp_path, 1)
    assert set(_licenses(emulator.state).values()) == {"Basic"}  # nothing was applied...
    for record in report:  # ...so nothing may be reported succeeded
        assert record["status"] == "failed", record
        assert record["message"], record


async def test_a_response_missing_fields_does_not_crash(
    emulator: RunningEmulator, broken: Callable[..., Awaitable[BrokenServer]], tmp_path: Path
) -> None:
    server = await broken(emulator.url, ListUsers=users_without_ids)
    account, source = _job(emulator, tmp_path)

    finished = await run_cli_process(migration(server.url, account, source, tmp_path))

    report = _assert_no_crash(finished, tmp_path, 1, 3)
    assert {r["status"] for r in report} <= {"failed", "pending"}
    assert all(r["message"] for r in report if r["status"] == "failed")
    assert set(_licenses(emulator.state).values()) == {"Basic"}


async def test_connection_refused_from_the_start_stops_cleanly_then_resumes(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    account, source = _job(emulator, tmp_path)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    args = migration(url, account, source, tmp_path, "--max-attempts", "2")

    finished = await run_cli_process(args)

    report = _assert_no_crash(finished, tmp_path, 1, 3)
    assert "ConnectionError" in finished.output or "connect" in finished.output.lower()
    assert {r["status"] for r in report} <= {"pending", "failed"}

    config = EmulatorConfig(accounts=1, users_per_account=USERS, port=port)
    async with running_emulator(config) as restarted:
        resumed = await run_cli_process([*args, "--retry-failed"])
        report = _assert_no_crash(resumed, tmp_path, 0)
        assert {r["status"] for r in report} == {"succeeded"}
        assert set(_licenses(restarted.state).values()) == {"Pro"}


async def test_the_emulator_dies_and_comes_back_on_the_same_port(tmp_path: Path) -> None:
    """Killed mid-run (requests in flight are cut off, new ones refused), restarted on the
    same port a second later: the job carries on and accounts for every user."""
    users = 600
    config = EmulatorConfig(accounts=1, users_per_account=users, latency_ms=40.0)
    app = create_app(config)
    first: EmulatorState = app[STATE_KEY]
    account = first.account_ids()[0]
    for user in first.users(account):
        user.license_type = "Basic"
    # Served by hand, so that it can die abruptly: an emulator stopped gracefully finishes
    # the requests in flight, a dead one cuts them off.
    runner = web.AppRunner(app, shutdown_timeout=0.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, reuse_address=True)
    await site.start()
    port = runner.addresses[0][1]
    source = _write_input(tmp_path, [u.user_id for u in first.users(account)], "user_id")
    args = migration(f"http://127.0.0.1:{port}", account, source, tmp_path, key="user_id")

    job = asyncio.create_task(run_cli_process([*args, "--concurrency", "4"]))
    try:
        try:
            async with aiohttp.ClientSession() as http:
                stats = f"http://127.0.0.1:{port}/_emulator/stats"
                while True:
                    async with http.get(stats) as response:
                        if (await response.json())["requests"]["BatchUpdateUser"] >= 6:
                            break
                    assert not job.done(), job.result().output[-3000:]
                    await asyncio.sleep(0.01)
            assert runner.server is not None
            for connection in list(runner.server.connections):  # requests in flight cut off
                if connection.transport is not None:
                    connection.transport.abort()
        finally:
            await runner.cleanup()  # and new connections refused
        await asyncio.sleep(1.0)
        restarted_config = EmulatorConfig(accounts=1, users_per_account=users, port=port)
        async with running_emulator(restarted_config) as second:
            for user in second.state.users(account):
                user.license_type = "Basic"
            finished = await job
    finally:
        if not job.done():
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job

    assert "Traceback" not in finished.stderr, finished.stderr[-3000:]
    assert finished.exit_code in (0, 1), finished.output[-3000:]
    report = read_report(tmp_path / "job.report.jsonl")
    assert len(report) == users
    assert {r["status"] for r in report} <= {"succeeded", "failed"}  # none lost
    before, after = _licenses(first), _licenses(second.state)
    for record in report:
        applied = "Pro" in (before[record["user_id"]], after[record["user_id"]])
        if record["status"] == "succeeded":
            assert applied, record
        elif record["error_code"] not in ("ConnectionError", "Timeout", "ServiceFailure"):
            assert not applied, record  # a clear failure changed nothing


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------- the run's own surroundings


def test_the_run_ends_when_its_log_reader_goes_away(
    emulator_factory: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    """A pipeline that stops reading stderr (a cancelled step, ``2>&1 | head``) must not
    leave the job hanging with half its users in flight."""
    emulator = emulator_factory(accounts=1, users_per_account=120)
    account = emulator.state.account_ids()[0]
    source = _write_input(
        tmp_path, [u.user_id for u in emulator.state.users(account)], header="user_id"
    )
    args = migration(emulator.url, account, source, tmp_path, "--rate", "4", key="user_id")
    args += ["--burst", "1"]
    process = subprocess.Popen(
        [sys.executable, "-m", "bulkchime", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    try:
        assert process.stderr is not None
        while b'"event": "batch"' not in process.stderr.readline():
            assert process.poll() is None
        process.stderr.close()  # the reader goes away after the first batch
        exit_code = process.wait(timeout=6)  # the rest needs ~1.5 s at 4 requests/s
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert exit_code in (0, 1, 3)
    report = read_report(tmp_path / "job.report.jsonl")
    assert len(report) == 120 and {r["status"] for r in report} <= {"succeeded", "pending"}

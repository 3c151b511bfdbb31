"""The emulator under abuse: malformed requests get the model's errors (never a 500), and
it survives a bounded load test on loopback, still answering its hooks afterwards."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import os
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from yarl import URL

from bulkchime.emulator import EmulatorConfig, RunningEmulator, running_emulator


@dataclass(frozen=True)
class Signed:
    """A request signed once with SigV4, ready to be sent (again and again) as is."""

    method: str
    url: URL
    body: bytes
    headers: dict[str, str]


def sign(
    method: str,
    url: str,
    body: bytes | Any = b"",
    *,
    secret: str = "testing",
    headers: dict[str, str] | None = None,
) -> Signed:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = AWSRequest(method=method, url=url, data=data, headers=dict(headers or {}))
    SigV4Auth(Credentials("testing", secret), "chime", "us-east-1").add_auth(request)
    return Signed(method, URL(url, encoded=True), data, dict(request.headers.items()))


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


async def send(http: aiohttp.ClientSession, signed: Signed) -> Answer:
    async with http.request(
        signed.method, signed.url, data=signed.body, headers=signed.headers
    ) as response:
        return Answer(response.status, dict(response.headers), await response.read())


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # auto_decompress off: the answers are read as sent; force_close: a request the server
    # refused mid-body must not poison the next one's connection.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        yield session


@pytest.fixture
async def emulator() -> AsyncIterator[RunningEmulator]:
    config = EmulatorConfig(accounts=1, users_per_account=5, max_body_bytes=4096)
    async with running_emulator(config) as running:
        yield running


def assert_model_error(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, (answer.status, answer.body[:300])
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.headers["x-amzn-ErrorType"] == f"{code}Exception"
    assert answer.json["Code"] == code and answer.json["Message"]


async def test_malformed_requests_get_the_models_errors_not_500s(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    base = emulator.url
    account = emulator.state.account_ids()[0]
    user = emulator.state.users(account)[0].user_id
    suspend = f"{base}/accounts/{account}/users?operation=suspend"
    cases: list[tuple[str, Signed, int, str]] = [
        ("truncated JSON", sign("POST", suspend, b'{"UserIdList": ["'), 400, "BadRequest"),
        ("JSON array", sign("POST", suspend, b"[1, 2]"), 400, "BadRequest"),
        ("nested too deep", sign("POST", f"{base}/accounts", b"[" * 100_000), 400, "BadRequest"),
        ("not UTF-8", sign("POST", f"{base}/accounts", b'{"Name": "\xc3\x28"}'), 400, "BadRequest"),
        ("wrong types", sign("POST", suspend, {"UserIdList": "x"}), 400, "BadRequest"),
        (
            "form body",
            sign(
                "POST",
                suspend,
                b"UserIdList=x",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ),
            400,
            "BadRequest",
        ),
        (
            "multipart body",
            sign(
                "POST",
                suspend,
                b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n",
                headers={"Content-Type": "multipart/form-data; boundary=b"},
            ),
            400,
            "BadRequest",
        ),
        (
            "garbage gzip",
            sign("POST", suspend, b"not gzip at all", headers={"Content-Encoding": "gzip"}),
            400,
            "BadRequest",
        ),
        (
            "real gzip",
            sign(
                "POST",
                suspend,
                gzip.compress(json.dumps({"UserIdList": [user]}).encode()),
                headers={"Content-Encoding": "gzip"},
            ),
            400,
            "BadRequest",
        ),
        ("oversized body", sign("POST", suspend, {"UserIdList": ["u" * 5000]}), 400, "BadRequest"),
        (
            "huge query string",
            sign("GET", f"{base}/accounts/{account}/users?max-results=5&x={'a' * 100_000}"),
            400,
            "BadRequest",
        ),
        (
            "unknown operation",
            sign("POST", f"{base}/accounts/{account}/users?operation=explode", {}),
            404,
            "UnknownOperation",
        ),
        (
            "unknown method",
            sign("PATCH", f"{base}/accounts/{account}", {}),
            404,
            "UnknownOperation",
        ),
        (
            "unknown path",
            sign("GET", f"{base}/accounts/{account}/groups"),
            404,
            "UnknownOperation",
        ),
        ("operation not served", sign("GET", f"{base}/phone-numbers"), 404, "UnknownOperation"),
        ("bad percent escape", sign("GET", f"{base}/accounts/%ZZ/users"), 404, "NotFound"),
        ("lone percent", sign("GET", f"{base}/accounts/{account}/users/%"), 404, "NotFound"),
        ("escaped bad UTF-8", sign("GET", f"{base}/accounts/%C3%28"), 404, "NotFound"),
        ("escaped NUL", sign("GET", f"{base}/accounts/{account}%00"), 404, "NotFound"),
        (
            "bad escape in a query value",
            sign("GET", f"{base}/accounts/{account}/users?user-email=%ZZ"),
            400,
            "BadRequest",
        ),
        (
            "bad escape in max-results",
            sign("GET", f"{base}/accounts/{account}/users?max-results=%3"),
            400,
            "BadRequest",
        ),
    ]
    for name, signed, status, code in cases:
        answer = await send(http, signed)
        assert answer.status < 500, name
        try:
            assert_model_error(answer, status, code)
        except AssertionError as error:
            raise AssertionError(f"{name}: {error}") from None
    # Not changed by any of it, and still serving.
    suspended = emulator.state.get_user(account, user)
    assert suspended is not None and suspended.registration_status != "Suspended"
    ok = await send(http, sign("GET", f"{base}/accounts/{account}/users/{user}"))
    assert ok.status == 200 and ok.json["User"]["UserId"] == user
    assert emulator.stats()["effects"]["BatchSuspendUser"]["total"] == 0


async def test_bytes_that_are_not_http_do_not_stop_the_emulator(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    host, port = emulator.url.removeprefix("http://").split(":")
    for garbage in (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS hello
        b"GARBAGE / HTTP/1.1\r\n\r\n",
        b"GET /accounts HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"POST /accounts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /accounts HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
    ):
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(garbage)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(200), 5)
        finally:
            writer.close()
            await writer.wait_closed()
        if answer:  # answered (aiohttp's own 400) or simply closed: never a 5xx
            assert answer.startswith(b"HTTP/1.") and answer.split()[1] == b"400", answer
    async with http.get(emulator.url + "/_emulator/stats") as response:
        assert response.status == 200
    assert (await send(http, sign("GET", emulator.url + "/accounts"))).status == 200


# ---------------------------------------------------------------- load

#: The load: this many signed requests, from this many clients, within this many seconds.
LOAD_REQUESTS = 20_000
LOAD_CLIENTS = 64
LOAD_SECONDS = 45.0


@pytest.mark.slow
async def test_a_bounded_load_test_on_loopback() -> None:
    """20,000 signed requests from 64 clients against ``bulkchime emulator`` in its own
    process; it answers every one correctly and keeps serving afterwards."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bulkchime",
        "emulator",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--accounts",
        "1",
        "--users-per-account",
        "200",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ),
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        url = line.decode().strip().removeprefix("listening on ")
        assert url.startswith("http://127.0.0.1:"), line
        async with asyncio.timeout(LOAD_SECONDS + 15):
            await _load(url)
    finally:
        if process.returncode is None:
            process.terminate()
        _, stderr = await asyncio.wait_for(process.communicate(), 15)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert b"Traceback" not in stderr


async def _load(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        accounts = await send(http, sign("GET", url + "/accounts"))
        account = accounts.json["Accounts"][0]["AccountId"]
        page = await send(http, sign("GET", f"{url}/accounts/{account}/users?max-results=200"))
        users = [u["UserId"] for u in page.json["Users"]]
    base = f"{url}/accounts/{account}"
    # A pool of signed requests, reused: reads, writes, and some that must be refused.
    pool: list[tuple[Signed, int]] = []
    pool += [(sign("GET", f"{base}/users/{user}"), 200) for user in users[:120]]
    pool += [(sign("GET", f"{base}/users?max-results={n}"), 200) for n in (1, 50, 200)]
    pool += [(sign("GET", base), 200), (sign("GET", f"{url}/accounts?max-results=10"), 200)]
    pool += [
        (
            sign(
                "POST",
                f"{base}/users",
                {
                    "UpdateUserRequestItems": [
                        {"UserId": user, "LicenseType": license_type} for user in users[i : i + 20]
                    ]
                },
            ),
            200,
        )
        for i, license_type in zip(range(0, 200, 20), itertools.cycle(("Basic", "Pro")))
    ]
    pool += [(sign("GET", f"{base}/users/nobody"), 404)] * 4
    pool += [(sign("GET", f"{base}/users", secret="wrong"), 403)] * 4
    pool += [(sign("POST", f"{base}/users?operation=suspend", b"{oops"), 400)] * 4
    requests = itertools.islice(itertools.cycle(pool), LOAD_REQUESTS)
    outcomes: Counter[tuple[int, int]] = Counter()

    async def client() -> None:
        async with aiohttp.ClientSession() as http:
            for signed, expected in requests:  # shared: the count is bounded overall
                answer = await send(http, signed)
                outcomes[(expected, answer.status)] += 1

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(LOAD_CLIENTS)))
    elapsed = time.monotonic() - started

    assert sum(outcomes.values()) == LOAD_REQUESTS
    wrong = {pair: n for pair, n in outcomes.items() if pair[0] != pair[1]}
    assert not wrong, wrong
    assert elapsed < LOAD_SECONDS, f"{LOAD_REQUESTS} requests took {elapsed:.1f} s"
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/_emulator/stats") as response:
            assert response.status == 200
            stats = await response.json()
        assert (await send(http, sign("GET", url + "/accounts"))).status == 200
    assert sum(stats["requests"].values()) == LOAD_REQUESTS + 2  # + the two set-up reads
    assert stats["effects"]["BatchUpdateUser"]["distinct"] == 200

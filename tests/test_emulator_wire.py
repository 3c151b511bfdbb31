"""The emulator over raw HTTP: both URI prefixes, SigV4, error format, hooks and faults."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from yarl import URL

from bulkchime.emulator import (
    STATE_KEY,
    EmulatorConfig,
    EmulatorState,
    RunningEmulator,
    create_app,
    running_emulator,
)


class Answer:
    """An HTTP answer: status, headers and the JSON body (None when empty)."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.json: Any = json.loads(body) if body else None


async def send(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    body: bytes | Any = b"",
    *,
    key: str = "testing",
    secret: str | None = "testing",
    token: str | None = None,
    tamper: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """Send a request signed with SigV4 as botocore signs it (unsigned when secret is None).

    A *token* is sent (and signed) as ``X-Amz-Security-Token``, as temporary credentials are.
    """
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = AWSRequest(method=method, url=url, data=data, headers=dict(headers or {}))
    if secret is not None:
        SigV4Auth(Credentials(key, secret, token), "chime", "us-east-1").add_auth(request)
    async with http.request(
        method,
        URL(url, encoded=True),  # exactly the bytes that were signed
        data=tamper if tamper is not None else data,
        headers=dict(request.headers.items()),
    ) as response:
        return Answer(response.status, dict(response.headers), await response.read())


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def emulator() -> AsyncIterator[RunningEmulator]:
    async with running_emulator(EmulatorConfig(users_per_account=20)) as running:
        yield running


def assert_error(answer: Answer, status: int, shape: str, code: str) -> None:
    assert answer.status == status, answer.json
    assert answer.headers["x-amzn-ErrorType"] == shape
    assert answer.json["Code"] == code
    assert isinstance(answer.json["Message"], str) and answer.json["Message"]


# ---------------------------------------------------------------- both prefixes


async def test_every_operation_under_the_console_prefix(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    base = emulator.url + "/console/accounts"
    account = emulator.state.account_ids()[0]
    user = emulator.state.users(account)[0].user_id
    created = await send(http, "POST", base, {"Name": "Console Team"})
    assert created.status == 201 and created.json["Account"]["AccountType"] == "Team"
    team = created.json["Account"]["AccountId"]
    calls: list[tuple[str, str, str, Any, int]] = [
        ("ListAccounts", "GET", "?max-results=5", b"", 200),
        ("GetAccount", "GET", f"/{account}", b"", 200),
        ("UpdateAccount", "POST", f"/{account}", {"Name": "Renamed"}, 200),
        ("GetAccountSettings", "GET", f"/{account}/settings", b"", 200),
        ("UpdateAccountSettings", "PUT", f"/{account}/settings",
         {"AccountSettings": {"EnableDialOut": False}}, 204),
        ("ListUsers", "GET", f"/{account}/users?max-results=5", b"", 200),
        ("GetUser", "GET", f"/{account}/users/{user}", b"", 200),
        ("UpdateUser", "POST", f"/{account}/users/{user}", {"LicenseType": "Basic"}, 200),
        ("BatchUpdateUser", "POST", f"/{account}/users",
         {"UpdateUserRequestItems": [{"UserId": user, "LicenseType": "Plus"}]}, 200),
        ("BatchSuspendUser", "POST", f"/{account}/users?operation=suspend",
         {"UserIdList": [user]}, 200),
        ("BatchUnsuspendUser", "POST", f"/{account}/users?operation=unsuspend",
         {"UserIdList": [user]}, 200),
        ("LogoutUser", "POST", f"/{account}/users/{user}?operation=logout", b"", 204),
        ("ResetPersonalPIN", "POST", f"/{account}/users/{user}?operation=reset-personal-pin",
         b"", 200),
        ("InviteUsers", "POST", f"/{team}/users?operation=add",
         {"UserEmailList": ["new@example.com"]}, 201),
        ("DeleteAccount", "DELETE", f"/{account}", b"", 204),
    ]  # fmt: skip
    for operation, method, path, body, status in calls:
        answer = await send(http, method, base + path, body)
        assert answer.status == status, (operation, answer.json)
    stats = emulator.stats()
    assert all(count == 1 for count in stats["requests"].values()), stats["requests"]
    assert all(e["total"] == 1 for e in stats["effects"].values()), stats["effects"]
    assert emulator.state.get_account(account) is None
    assert emulator.state.users(team)[0].primary_email == "new@example.com"


async def test_both_prefixes_answer_the_same(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    account = emulator.state.account_ids()[1]
    path = f"/accounts/{account}/users?max-results=7"
    plain = await send(http, "GET", emulator.url + path)
    console = await send(http, "GET", emulator.url + "/console" + path)
    assert plain.status == console.status == 200
    assert plain.json == console.json
    assert emulator.stats()["requests"]["ListUsers"] == 2


async def test_encoded_query_values_verify(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    account = emulator.state.account_ids()[0]
    query = "user-email=USER3%40corp1.example.com&max-results=5"
    answer = await send(http, "GET", f"{emulator.url}/accounts/{account}/users?{query}")
    assert answer.status == 200
    assert [u["PrimaryEmail"] for u in answer.json["Users"]] == ["user3@corp1.example.com"]


# ---------------------------------------------------------------- routing and bodies


async def test_unknown_routes_are_json_404s(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    account = emulator.state.account_ids()[0]
    for method, path in [
        ("GET", "/nothing"),
        ("PUT", "/accounts"),
        ("POST", f"/accounts/{account}/users?operation=explode"),
        ("GET", f"/accounts/{account}/users/u1/extra"),
    ]:
        answer = await send(http, method, emulator.url + path)
        # Not NotFound: that is the code of a missing account or user.
        assert_error(answer, 404, "UnknownOperationException", "UnknownOperation")
        assert answer.json["Message"].startswith(f"No Chime operation matches {method} /")
        assert "serves only the 16 operations of the seed model" in answer.json["Message"]
    assert sum(emulator.stats()["requests"].values()) == 0  # nothing routed


async def test_operations_not_served_are_named(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    account = emulator.state.account_ids()[0]
    for method, path, operation in [
        ("GET", "/phone-numbers", "ListPhoneNumbers"),
        ("POST", f"/accounts/{account}/users?operation=create", "CreateUser"),
        ("GET", "/search?type=phone-numbers", "SearchAvailablePhoneNumbers"),
        ("PUT", f"/accounts/{account}/users/u1/settings", "UpdateUserSettings"),
    ]:
        answer = await send(http, method, emulator.url + path)
        assert_error(answer, 404, "UnknownOperationException", "UnknownOperation")
        message = answer.json["Message"]
        assert message.startswith(f"{operation} is not served: this emulator serves only the 16")
        assert "BatchSuspendUser" in message and "UpdateUser." in message
    assert sum(emulator.stats()["requests"].values()) == 0


async def test_bad_bodies_are_400s_not_500s(http: aiohttp.ClientSession) -> None:
    config = EmulatorConfig(accounts=1, users_per_account=1, max_body_bytes=2048)
    async with running_emulator(config) as emulator:
        account = emulator.state.account_ids()[0]
        url = f"{emulator.url}/accounts/{account}/users?operation=suspend"
        bodies = [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe{}", b"null"]
        bodies += [json.dumps({"UserIdList": ["u" * 3000]}).encode()]  # too large
        bodies += [
            json.dumps({"UserIdList": "u"}).encode(),
            json.dumps({"UserIdList": [1]}).encode(),
        ]
        bodies += [b"{}"]  # missing the required list
        bodies += [b"[" * 1500]  # nested deeper than the JSON parser's recursion limit
        for body in bodies:
            answer = await send(http, "POST", url, body)
            assert_error(answer, 400, "BadRequestException", "BadRequest")
        assert emulator.stats()["requests"]["BatchSuspendUser"] == len(bodies)
        assert emulator.stats()["effects"]["BatchSuspendUser"]["total"] == 0


async def test_overlong_uris_and_compressed_bodies_are_400s(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    account = emulator.state.account_ids()[0]
    long_query = f"{emulator.url}/accounts/{account}/users?max-results=5&x={'a' * 9000}"
    answer = await send(http, "GET", long_query)
    assert_error(answer, 400, "BadRequestException", "BadRequest")
    assert "URI" in answer.json["Message"]
    suspend = f"{emulator.url}/accounts/{account}/users?operation=suspend"
    for encoding in ("gzip", "deflate", "br"):
        compressed = await send(
            http, "POST", suspend, b"\x1f\x8b garbage", headers={"Content-Encoding": encoding}
        )
        assert_error(compressed, 400, "BadRequestException", "BadRequest")
        assert "Content-Encoding" in compressed.json["Message"]
    assert emulator.stats()["requests"]["BatchSuspendUser"] == 3


async def test_query_values_are_validated(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    account = emulator.state.account_ids()[0]
    for query in ("max-results=abc", "max-results=0", "max-results=201", "user-email=nope"):
        answer = await send(http, "GET", f"{emulator.url}/accounts/{account}/users?{query}")
        assert_error(answer, 400, "BadRequestException", "BadRequest")
    ok = await send(http, "GET", f"{emulator.url}/accounts/{account}/users?user-type=PrivateUser")
    assert ok.status == 200  # a query member newer than the seed model is ignored


# ---------------------------------------------------------------- SigV4


async def test_signature_checks(http: aiohttp.ClientSession, emulator: RunningEmulator) -> None:
    url = emulator.url + "/accounts"
    assert (await send(http, "GET", url)).status == 200
    wrong = await send(http, "GET", url, secret="not-the-secret")
    assert_error(wrong, 403, "ForbiddenException", "Forbidden")
    assert "signature" in wrong.json["Message"]
    unknown = await send(http, "GET", url, key="AKIDUNKNOWN")
    assert_error(unknown, 401, "UnauthorizedClientException", "Unauthorized")
    unsigned = await send(http, "GET", url, secret=None)
    assert_error(unsigned, 403, "ForbiddenException", "Forbidden")
    malformed = await send(http, "GET", url, secret=None, headers={"Authorization": "Bearer x"})
    assert_error(malformed, 403, "ForbiddenException", "Forbidden")
    assert emulator.stats()["requests"]["ListAccounts"] == 5  # auth failures count too


async def test_a_tampered_body_or_path_fails_the_signature(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    account = emulator.state.account_ids()[0]
    user = emulator.state.users(account)[0].user_id
    url = f"{emulator.url}/accounts/{account}/users?operation=suspend"
    body = json.dumps({"UserIdList": ["ghost"]}).encode()
    tampered = json.dumps({"UserIdList": [user]}).encode()
    answer = await send(http, "POST", url, body, tamper=tampered)
    assert_error(answer, 403, "ForbiddenException", "Forbidden")
    suspended = emulator.state.get_user(account, user)
    assert suspended is not None and suspended.registration_status != "Suspended"


async def test_auth_comes_before_validation(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    account = emulator.state.account_ids()[0]
    url = f"{emulator.url}/accounts/{account}/users?operation=suspend"
    answer = await send(http, "POST", url, b"{not json", secret="wrong")
    assert_error(answer, 403, "ForbiddenException", "Forbidden")


async def test_session_tokens_refuse_expired_tokens(http: aiohttp.ClientSession) -> None:
    config = EmulatorConfig(accounts=1, users_per_account=3, session_tokens=("tok-live",))
    async with running_emulator(config) as emulator:
        url = emulator.url + "/accounts"
        assert (await send(http, "GET", url, token="tok-live")).status == 200
        assert (await send(http, "GET", url)).status == 200  # no token: the keys decide
        expired = await send(http, "GET", url, token="tok-old")
        assert_error(expired, 403, "ForbiddenException", "Forbidden")
        assert expired.json["Message"] == "The security token included in the request is expired"
        # Without a token a wrong secret is still a wrong signature.
        wrong = await send(http, "GET", url, secret="nope")
        assert_error(wrong, 403, "ForbiddenException", "Forbidden")
        assert "signature" in wrong.json["Message"]
        # The token expires while the emulator runs (both ways of changing it).
        emulator.configure(session_tokens=["tok-next"])
        assert (await send(http, "GET", url, token="tok-live")).status == 403
        assert (await send(http, "GET", url, token="tok-next")).status == 200
        async with http.post(
            emulator.url + "/_emulator/config", json={"session_tokens": ["tok-3"]}
        ) as response:
            assert response.status == 200
            shown = await response.text()
            assert "tok-3" not in shown  # a credential is never echoed
            assert json.loads(shown)["session_tokens"] == ["***"]
        assert (await send(http, "GET", url, token="tok-next")).status == 403
        emulator.configure(session_tokens=[])  # empty: any token is accepted again
        assert (await send(http, "GET", url, token="anything")).status == 200
        assert emulator.stats()["requests"]["ListAccounts"] == 8


async def test_forbidden_accounts_answer_403_after_a_valid_signature(
    http: aiohttp.ClientSession,
) -> None:
    config = EmulatorConfig(accounts=2, users_per_account=3)
    async with running_emulator(config) as emulator:
        denied, allowed = emulator.state.account_ids()
        emulator.configure(forbidden_accounts=[denied])
        user = emulator.state.users(denied)[0].user_id
        for method, path, body in [
            ("GET", f"/accounts/{denied}", b""),
            ("GET", f"/accounts/{denied}/users", b""),
            ("POST", f"/accounts/{denied}/users?operation=suspend", {"UserIdList": [user]}),
            ("POST", f"/console/accounts/{denied}/users/{user}?operation=logout", b""),
        ]:
            answer = await send(http, method, emulator.url + path, body)
            assert_error(answer, 403, "ForbiddenException", "Forbidden")
            assert "not authorized to perform" in answer.json["Message"]
            assert f"on this account ({denied})" in answer.json["Message"]
        assert emulator.state.users(denied)[0].registration_status != "Suspended"
        assert (await send(http, "GET", f"{emulator.url}/accounts/{allowed}/users")).status == 200
        listed = await send(http, "GET", emulator.url + "/accounts")
        assert listed.status == 200 and len(listed.json["Accounts"]) == 2
        # The signature is checked first: a wrong secret is told as such, on any account.
        wrong = await send(http, "GET", f"{emulator.url}/accounts/{denied}", secret="nope")
        assert "signature" in wrong.json["Message"]
        stats = emulator.stats()
        assert stats["requests"]["GetAccount"] == 2 and stats["requests"]["LogoutUser"] == 1
        assert stats["effects"]["BatchSuspendUser"]["total"] == 0
        async with http.post(
            emulator.url + "/_emulator/config", json={"forbidden_accounts": []}
        ) as response:
            assert response.status == 200
        assert (await send(http, "GET", f"{emulator.url}/accounts/{denied}")).status == 200
    constructed = EmulatorConfig(accounts=1, users_per_account=1, forbidden_accounts=("x",))
    async with running_emulator(constructed) as emulator:
        assert emulator.config.forbidden_accounts == ("x",)


# ---------------------------------------------------------------- hooks


async def test_hooks_are_not_signed_or_counted(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    async with http.get(emulator.url + "/_emulator/stats") as response:
        assert response.status == 200
        stats = await response.json()
    assert set(stats) >= {"requests", "throttled", "faults", "effects"}
    assert set(stats["requests"]) == {
        "BatchSuspendUser", "BatchUnsuspendUser", "BatchUpdateUser", "CreateAccount",
        "DeleteAccount", "GetAccount", "GetAccountSettings", "GetUser", "InviteUsers",
        "ListAccounts", "ListUsers", "LogoutUser", "ResetPersonalPIN", "UpdateAccount",
        "UpdateAccountSettings", "UpdateUser",
    }  # fmt: skip
    async with http.post(emulator.url + "/_emulator/config", json={"rate": 0}) as response:
        assert response.status == 200
    assert emulator.stats() == stats


async def test_config_hook_changes_faults_live(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    hook = emulator.url + "/_emulator/config"
    changes = {"rate": 5, "burst": 2, "error_rate": 0.5, "user_error_rate": 0.25, "latency_ms": 1}
    lists: dict[str, list[str]] = {"session_tokens": [], "forbidden_accounts": []}
    async with http.post(hook, json=changes) as response:
        assert response.status == 200
        assert await response.json() == changes | lists
    assert (emulator.config.rate, emulator.config.burst) == (5.0, 2)
    for bad in (
        {"rate": -1}, {"nope": 1}, {"error_rate": 2}, {"burst": 1.5}, {"rate": "x"}, [1],
        {"session_tokens": "tok"}, {"session_tokens": [1]}, {"forbidden_accounts": [""]},
        {"forbidden_accounts": None},
    ):  # fmt: skip
        async with http.post(hook, json=bad) as response:
            assert response.status == 400, bad
            assert (await response.json())["Code"] == "BadRequest"
    async with http.get(hook) as response:
        assert await response.json() == changes | lists  # nothing changed by the bad ones
    emulator.configure(rate=0, error_rate=0)
    assert emulator.config.rate == 0
    with pytest.raises(ValueError, match="unknown setting"):
        emulator.configure(speed=1)


# ---------------------------------------------------------------- faults


async def test_token_bucket_answers_429(http: aiohttp.ClientSession) -> None:
    config = EmulatorConfig(accounts=1, users_per_account=5, rate=1, burst=2)
    async with running_emulator(config) as emulator:
        account = emulator.state.account_ids()[0]
        user = emulator.state.users(account)[0].user_id
        url = emulator.url + "/accounts"
        assert [(await send(http, "GET", url)).status for _ in range(2)] == [200, 200]
        throttled = await send(http, "GET", url)
        assert_error(throttled, 429, "ThrottledClientException", "Throttled")
        assert "Retry-After" not in throttled.headers  # under a second to wait
        # A throttled request changes nothing.
        suspend = f"{emulator.url}/accounts/{account}/users?operation=suspend"
        answer = await send(http, "POST", suspend, {"UserIdList": [user]})
        assert answer.status == 429
        assert emulator.state.users(account)[0].registration_status != "Suspended"
        emulator.configure(rate=0.25, burst=1)  # refilled: one token, then 4 s per token
        assert (await send(http, "GET", url)).status == 200
        slow = await send(http, "GET", url)
        assert slow.status == 429 and slow.headers["Retry-After"] == "4"
        stats = emulator.stats()
        assert stats["throttled"] == 3
        assert stats["requests"]["ListAccounts"] == 5
        assert stats["effects"]["BatchSuspendUser"]["total"] == 0


async def test_error_rate_injects_500_and_503_before_any_effect(
    http: aiohttp.ClientSession,
) -> None:
    config = EmulatorConfig(accounts=1, users_per_account=5, error_rate=1.0)
    async with running_emulator(config) as emulator:
        account = emulator.state.account_ids()[0]
        users = [u.user_id for u in emulator.state.users(account)]
        url = f"{emulator.url}/accounts/{account}/users?operation=suspend"
        seen = set()
        for _ in range(12):
            answer = await send(http, "POST", url, {"UserIdList": users})
            seen.add((answer.status, answer.headers["x-amzn-ErrorType"], answer.json["Code"]))
        assert seen == {
            (500, "ServiceFailureException", "ServiceFailure"),
            (503, "ServiceUnavailableException", "ServiceUnavailable"),
        }
        assert all(u.registration_status != "Suspended" for u in emulator.state.users(account))
        stats = emulator.stats()
        assert stats["faults"] == 12 and stats["effects"]["BatchSuspendUser"]["total"] == 0


async def test_user_error_rate_throttles_batch_items(http: aiohttp.ClientSession) -> None:
    config = EmulatorConfig(accounts=1, users_per_account=5, user_error_rate=1.0)
    async with running_emulator(config) as emulator:
        account = emulator.state.account_ids()[0]
        users = [u.user_id for u in emulator.state.users(account)]
        licensed_before = [copy.copy(u) for u in emulator.state.users(account)]
        base = f"{emulator.url}/accounts/{account}/users"
        bodies = [
            ("?operation=suspend", {"UserIdList": users}),
            ("?operation=unsuspend", {"UserIdList": users}),
            (
                "",
                {"UpdateUserRequestItems": [{"UserId": u, "LicenseType": "Basic"} for u in users]},
            ),
        ]
        for query, body in bodies:
            answer = await send(http, "POST", base + query, body)
            assert answer.status == 200
            assert [e["UserId"] for e in answer.json["UserErrors"]] == users
            assert {e["ErrorCode"] for e in answer.json["UserErrors"]} == {"Throttled"}
        assert all(u.registration_status != "Suspended" for u in emulator.state.users(account))
        assert emulator.state.users(account) == licensed_before
        effects = emulator.stats()["effects"]
        assert effects["BatchSuspendUser"]["total"] == effects["BatchUpdateUser"]["total"] == 0
        assert emulator.stats()["user_throttled"] == 15


async def test_latency_is_added(http: aiohttp.ClientSession) -> None:
    async with running_emulator(EmulatorConfig(accounts=1, latency_ms=150)) as emulator:
        started = time.perf_counter()
        assert (await send(http, "GET", emulator.url + "/accounts")).status == 200
        assert time.perf_counter() - started >= 0.15


async def test_faults_are_deterministic_under_the_seed(http: aiohttp.ClientSession) -> None:
    async def statuses(seed: int) -> list[int]:
        config = EmulatorConfig(accounts=1, users_per_account=1, seed=seed, error_rate=0.5)
        async with running_emulator(config) as emulator:
            return [(await send(http, "GET", emulator.url + "/accounts")).status for _ in range(16)]

    first, again, other = await statuses(7), await statuses(7), await statuses(8)
    assert first == again
    assert 200 in first and (500 in first or 503 in first)
    assert first != other


# ---------------------------------------------------------------- the app itself


def test_same_seed_same_data_other_seed_other_ids() -> None:
    def snapshot(app_state: EmulatorState) -> list[tuple[Any, ...]]:
        return [
            (a.account_id, a.name, [(u.user_id, u.primary_email, u.display_name, u.license_type,
                                    u.registration_status, u.registered_on)
                                   for u in app_state.users(a.account_id)])
            for a in app_state.accounts()
        ]  # fmt: skip

    config = EmulatorConfig(accounts=3, users_per_account=50, seed=42)
    one, two = create_app(config)[STATE_KEY], create_app(config)[STATE_KEY]
    assert snapshot(one) == snapshot(two)
    other = create_app(EmulatorConfig(accounts=3, users_per_account=50, seed=43))[STATE_KEY]
    assert one.account_ids() != other.account_ids()
    # An account's id does not depend on how many users the accounts hold.
    bigger = create_app(EmulatorConfig(accounts=3, users_per_account=60, seed=42))[STATE_KEY]
    assert bigger.account_ids() == one.account_ids()


def test_bad_configurations_are_refused() -> None:
    for bad in (
        EmulatorConfig(accounts=-1),
        EmulatorConfig(rate=-1),
        EmulatorConfig(error_rate=1.5),
        EmulatorConfig(port=70000),
        EmulatorConfig(max_body_bytes=0),
        EmulatorConfig(session_tokens="tok"),  # type: ignore[arg-type]
        EmulatorConfig(forbidden_accounts=(1,)),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValueError):
            create_app(bad)
    shown = repr(EmulatorConfig(secret_access_key="s3cr3t", session_tokens=("tok-SECRET",)))
    assert "s3cr3t" not in shown and "tok-SECRET" not in shown
    assert EmulatorConfig(forbidden_accounts=["a"]).forbidden_accounts == ("a",)  # type: ignore[arg-type]


async def test_latency_does_not_block_other_requests(http: aiohttp.ClientSession) -> None:
    async with running_emulator(EmulatorConfig(accounts=1, latency_ms=300)) as emulator:
        started = time.perf_counter()
        answers = await asyncio.gather(
            *(send(http, "GET", emulator.url + "/accounts") for _ in range(5))
        )
        assert [a.status for a in answers] == [200] * 5
        assert time.perf_counter() - started < 1.4


async def test_twenty_thousand_users_seed_and_page_quickly(http: aiohttp.ClientSession) -> None:
    started = time.perf_counter()
    async with running_emulator(EmulatorConfig(accounts=1, users_per_account=20_000)) as emulator:
        seeded = time.perf_counter()
        assert seeded - started < 5
        account = emulator.state.account_ids()[0]
        base = f"{emulator.url}/accounts/{account}/users?max-results=200"
        seen: list[str] = []
        token = None
        while True:
            url = base if token is None else f"{base}&next-token={token}"
            page = await send(http, "GET", url)
            assert page.status == 200, page.json
            seen += [u["UserId"] for u in page.json["Users"]]
            token = page.json.get("NextToken")
            if token is None:
                break
        assert time.perf_counter() - seeded < 10
        assert len(seen) == len(set(seen)) == 20_000
        assert seen == [u.user_id for u in emulator.state.users(account)]
        assert emulator.stats()["requests"]["ListUsers"] == 100

"""The emulator's operations, driven with aiobotocore as the engine drives them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import ClientError

from bulkchime.emulator import EmulatorConfig, RunningEmulator, running_emulator

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_SESSION: AioSession | None = None


def session() -> AioSession:
    """One botocore session for the module: loading the service model once saves time."""
    global _SESSION
    if _SESSION is None:
        _SESSION = get_session()
    return _SESSION


@pytest.fixture
async def emulator() -> AsyncIterator[RunningEmulator]:
    async with running_emulator(EmulatorConfig()) as running:
        yield running


@pytest.fixture
async def chime(emulator: RunningEmulator) -> AsyncIterator[Any]:
    """A Chime client without SDK retries or client-side validation (the server validates)."""
    config = AioConfig(retries={"total_max_attempts": 1}, parameter_validation=False)
    async with session().create_client(
        "chime",
        region_name="us-east-1",
        endpoint_url=emulator.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    ) as client:
        yield client


def error_of(info: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    """(HTTP status, botocore's Error.Code, the body's Code) of a ClientError."""
    response: Any = info.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response.get("Code"),
    )


async def first_account(emulator: RunningEmulator) -> str:
    return emulator.state.account_ids()[0]


# ---------------------------------------------------------------- accounts


async def test_seeded_accounts_are_enterprise_lwa(chime: Any, emulator: RunningEmulator) -> None:
    accounts = (await chime.list_accounts())["Accounts"]
    assert [a["Name"] for a in accounts] == ["Example Corp 1", "Example Corp 2"]
    assert [a["AccountId"] for a in accounts] == emulator.state.account_ids()
    for account in accounts:
        assert UUID.match(account["AccountId"])
        assert account["AccountType"] == "EnterpriseLWA"
        assert account["DefaultLicense"] == "Pro"
        assert account["SupportedLicenses"] == ["Basic", "Plus", "Pro", "ProTrial"]
        assert re.fullmatch(r"\d{12}", account["AwsAccountId"])
    got = await chime.get_account(AccountId=accounts[1]["AccountId"])
    assert got["Account"]["Name"] == "Example Corp 2"
    assert got["Account"]["CreatedTimestamp"].year == 2018


async def test_list_accounts_filters(chime: Any) -> None:
    names = [a["Name"] for a in (await chime.list_accounts(Name="Example Corp 2"))["Accounts"]]
    assert names == ["Example Corp 2"]
    assert len((await chime.list_accounts(Name="Example"))["Accounts"]) == 2  # a prefix
    assert (await chime.list_accounts(Name="Nobody"))["Accounts"] == []
    found = await chime.list_accounts(UserEmail="USER7@corp2.example.com")
    assert [a["Name"] for a in found["Accounts"]] == ["Example Corp 2"]
    assert (await chime.list_accounts(UserEmail="user7@corp9.example.com"))["Accounts"] == []


async def test_list_accounts_pages(chime: Any, emulator: RunningEmulator) -> None:
    first = await chime.list_accounts(MaxResults=1)
    token = first["NextToken"]
    assert emulator.state.account_ids()[1] not in token and not token.isdigit()
    second = await chime.list_accounts(MaxResults=1, NextToken=token)
    assert "NextToken" not in second
    ids = [a["AccountId"] for a in first["Accounts"] + second["Accounts"]]
    assert ids == emulator.state.account_ids()


async def test_create_account_makes_team_accounts_and_allows_duplicate_names(
    chime: Any, emulator: RunningEmulator
) -> None:
    created = [(await chime.create_account(Name="Team A"))["Account"] for _ in range(2)]
    assert created[0]["AccountId"] != created[1]["AccountId"]
    for account in created:
        assert account["AccountType"] == "Team"
        assert account["DefaultLicense"] == "Pro"
        assert account["SupportedLicenses"] == ["Basic", "Pro"]
        assert UUID.match(account["AccountId"])
    assert len(emulator.state.find_accounts_by_name("Team A")) == 2
    assert emulator.stats()["effects"]["CreateAccount"] == {"total": 2, "distinct": 1}


async def test_update_account_renames(chime: Any, emulator: RunningEmulator) -> None:
    account_id = await first_account(emulator)
    renamed = await chime.update_account(AccountId=account_id, Name="Renamed Corp")
    assert renamed["Account"]["Name"] == "Renamed Corp"
    account = emulator.state.get_account(account_id)
    assert account is not None and account.name == "Renamed Corp"


async def test_account_settings(chime: Any, emulator: RunningEmulator) -> None:
    account_id = await first_account(emulator)
    settings = await chime.get_account_settings(AccountId=account_id)
    assert settings["AccountSettings"] == {"DisableRemoteControl": False, "EnableDialOut": True}
    answer = await chime.update_account_settings(
        AccountId=account_id, AccountSettings={"DisableRemoteControl": True}
    )
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 204
    settings = await chime.get_account_settings(AccountId=account_id)
    assert settings["AccountSettings"] == {"DisableRemoteControl": True, "EnableDialOut": True}
    stored = emulator.state.settings(account_id)
    assert stored is not None and stored.disable_remote_control


async def test_unknown_account_is_not_found_with_botocore_exception(chime: Any) -> None:
    with pytest.raises(chime.exceptions.NotFoundException) as info:
        await chime.get_account(AccountId="00000000-0000-4000-8000-000000000000")
    assert error_of(info) == (404, "NotFoundException", "NotFound")
    assert "00000000-0000-4000-8000-000000000000" in info.value.response["Error"]["Message"]


async def test_delete_team_account_with_users_is_unprocessable(
    chime: Any, emulator: RunningEmulator
) -> None:
    team = (await chime.create_account(Name="Leavers"))["Account"]["AccountId"]
    await chime.invite_users(AccountId=team, UserEmailList=["a@example.com", "b@example.com"])
    with pytest.raises(chime.exceptions.UnprocessableEntityException) as info:
        await chime.delete_account(AccountId=team)
    assert error_of(info) == (422, "UnprocessableEntityException", "Unprocessable")
    ids = [u.user_id for u in emulator.state.users(team)]
    assert (await chime.batch_suspend_user(AccountId=team, UserIdList=ids))["UserErrors"] == []
    deleted = await chime.delete_account(AccountId=team)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert emulator.state.get_account(team) is None


async def test_deleted_account_is_not_found_everywhere(
    chime: Any, emulator: RunningEmulator
) -> None:
    account_id = await first_account(emulator)  # EnterpriseLWA: deletable with users
    user_id = emulator.state.users(account_id)[0].user_id
    await chime.delete_account(AccountId=account_id)
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: chime.get_account(AccountId=account_id),
        lambda: chime.get_account_settings(AccountId=account_id),
        lambda: chime.update_account(AccountId=account_id, Name="X"),
        lambda: chime.update_account_settings(AccountId=account_id, AccountSettings={}),
        lambda: chime.delete_account(AccountId=account_id),
        lambda: chime.list_users(AccountId=account_id),
        lambda: chime.get_user(AccountId=account_id, UserId=user_id),
        lambda: chime.update_user(AccountId=account_id, UserId=user_id, LicenseType="Pro"),
        lambda: chime.logout_user(AccountId=account_id, UserId=user_id),
        lambda: chime.reset_personal_pin(AccountId=account_id, UserId=user_id),
        lambda: chime.batch_suspend_user(AccountId=account_id, UserIdList=[user_id]),
        lambda: chime.batch_unsuspend_user(AccountId=account_id, UserIdList=[user_id]),
        lambda: chime.batch_update_user(
            AccountId=account_id, UpdateUserRequestItems=[{"UserId": user_id}]
        ),
        lambda: chime.invite_users(AccountId=account_id, UserEmailList=["x@example.com"]),
    ]
    for call in calls:
        with pytest.raises(ClientError) as info:
            await call()
        assert error_of(info) == (404, "NotFoundException", "NotFound")
    listed = (await chime.list_accounts())["Accounts"]
    assert account_id not in [a["AccountId"] for a in listed]
    assert emulator.stats()["effects"]["DeleteAccount"] == {"total": 1, "distinct": 1}


# ---------------------------------------------------------------- users


async def test_seeded_users_are_realistic(emulator: RunningEmulator) -> None:
    emails: set[str] = set()
    for account_number, account_id in enumerate(emulator.state.account_ids(), start=1):
        users = emulator.state.users(account_id)
        assert len(users) == 100
        assert users[0].primary_email == f"user1@corp{account_number}.example.com"
        emails.update(u.primary_email for u in users)
        assert all(UUID.match(u.user_id) and u.display_name for u in users)
        assert {u.license_type for u in users} == {"Basic", "Plus", "Pro", "ProTrial"}
        statuses = [u.registration_status for u in users]
        assert statuses.count("Registered") > statuses.count("Unregistered") > 0
        for user in users:
            if user.registration_status == "Unregistered":
                assert user.invitation_status == "Pending" and user.registered_on is None
            else:
                assert user.invitation_status == "Accepted" and user.registered_on is not None
    assert len(emails) == 200  # unique across accounts


async def test_list_users_walks_every_page(chime: Any, emulator: RunningEmulator) -> None:
    account_id = await first_account(emulator)
    sizes, ids, token = [], [], None
    while True:
        kwargs: dict[str, Any] = {"AccountId": account_id, "MaxResults": 30}
        if token:
            kwargs["NextToken"] = token
        page = await chime.list_users(**kwargs)
        sizes.append(len(page["Users"]))
        ids += [u["UserId"] for u in page["Users"]]
        token = page.get("NextToken")
        if not token:
            break
        assert not token.isdigit() and account_id not in token  # opaque
    assert sizes == [30, 30, 30, 10]
    assert ids == [u.user_id for u in emulator.state.users(account_id)]
    default = await chime.list_users(AccountId=account_id)
    assert len(default["Users"]) == 100 and "NextToken" not in default


async def test_list_users_user_shape(chime: Any, emulator: RunningEmulator) -> None:
    account_id = await first_account(emulator)
    user = (await chime.list_users(AccountId=account_id, MaxResults=1))["Users"][0]
    stored = emulator.state.users(account_id)[0]
    assert user["UserId"] == stored.user_id
    assert user["AccountId"] == account_id
    assert user["PrimaryEmail"] == stored.primary_email
    assert user["DisplayName"] == stored.display_name
    assert user["LicenseType"] == stored.license_type
    assert user["UserRegistrationStatus"] == stored.registration_status
    assert user["InvitedOn"] == stored.invited_on
    assert "PersonalPIN" not in user


async def test_bad_next_tokens_are_bad_requests(chime: Any, emulator: RunningEmulator) -> None:
    one, two = emulator.state.account_ids()
    token = (await chime.list_users(AccountId=one, MaxResults=10))["NextToken"]
    for bad in ("garbage", "bm90LWpzb24", token + "x", "WyJ1c2VyczpvdGhlciIsM10"):
        with pytest.raises(chime.exceptions.BadRequestException):
            await chime.list_users(AccountId=one, NextToken=bad)
    with pytest.raises(chime.exceptions.BadRequestException):  # another account's token
        await chime.list_users(AccountId=two, NextToken=token)
    with pytest.raises(chime.exceptions.BadRequestException):  # a ListUsers token
        await chime.list_accounts(NextToken=token)


async def test_list_users_email_filter(chime: Any, emulator: RunningEmulator) -> None:
    account_id = await first_account(emulator)
    found = await chime.list_users(AccountId=account_id, UserEmail="User42@CORP1.example.com")
    assert [u["PrimaryEmail"] for u in found["Users"]] == ["user42@corp1.example.com"]
    partial = await chime.list_users(AccountId=account_id, UserEmail="user4@corp1.example.co")
    assert partial["Users"] == []  # exact match only
    other = await chime.list_users(AccountId=account_id, UserEmail="user42@corp2.example.com")
    assert other["Users"] == []
    assert emulator.state.find_user_by_email(account_id, "USER42@corp1.example.com") is not None


async def test_get_user_and_unknown_user(chime: Any, emulator: RunningEmulator) -> None:
    account_id = await first_account(emulator)
    stored = emulator.state.users(account_id)[5]
    user = (await chime.get_user(AccountId=account_id, UserId=stored.user_id))["User"]
    assert user["PrimaryEmail"] == stored.primary_email
    with pytest.raises(chime.exceptions.NotFoundException) as info:
        await chime.get_user(AccountId=account_id, UserId="no-such-user")
    assert error_of(info) == (404, "NotFoundException", "NotFound")


async def test_suspend_and_unsuspend_enterprise_users(
    chime: Any, emulator: RunningEmulator
) -> None:
    account_id = await first_account(emulator)
    state = emulator.state
    registered = [
        u.user_id for u in state.users(account_id) if u.registration_status == "Registered"
    ]
    picked = registered[:3]
    answer = await chime.batch_suspend_user(AccountId=account_id, UserIdList=[*picked, "ghost"])
    assert answer["UserErrors"] == [
        {
            "UserId": "ghost",
            "ErrorCode": "NotFound",
            "ErrorMessage": f"The user ghost does not exist in account {account_id}.",
        }
    ]
    for user_id in picked:
        user = state.get_user(account_id, user_id)
        assert user is not None and user.registration_status == "Suspended"
    again = await chime.batch_suspend_user(AccountId=account_id, UserIdList=picked[:1])
    assert again["UserErrors"] == []
    # Unsuspend: suspended users come back; users who were not suspended are ignored.
    back = await chime.batch_unsuspend_user(
        AccountId=account_id, UserIdList=picked + registered[3:5]
    )
    assert back["UserErrors"] == []
    for user_id in picked + registered[3:5]:
        user = state.get_user(account_id, user_id)
        assert user is not None and user.registration_status == "Registered"
    effects = emulator.stats()["effects"]
    assert effects["BatchSuspendUser"] == {"total": 4, "distinct": 3}
    assert effects["BatchUnsuspendUser"] == {"total": 5, "distinct": 5}


async def test_batch_update_user_sets_licenses(chime: Any, emulator: RunningEmulator) -> None:
    account_id = await first_account(emulator)
    ids = [u.user_id for u in emulator.state.users(account_id)[:3]]
    items = [
        {"UserId": ids[0], "LicenseType": "ProTrial"},
        {"UserId": ids[1], "LicenseType": "Plus"},
    ]
    items += [{"UserId": ids[2]}, {"UserId": "ghost", "LicenseType": "Pro"}]
    answer = await chime.batch_update_user(AccountId=account_id, UpdateUserRequestItems=items)
    assert [(e["UserId"], e["ErrorCode"]) for e in answer["UserErrors"]] == [("ghost", "NotFound")]
    licenses = [emulator.state.get_user(account_id, i).license_type for i in ids[:2]]  # type: ignore[union-attr]
    assert licenses == ["ProTrial", "Plus"]
    assert emulator.stats()["effects"]["BatchUpdateUser"] == {"total": 3, "distinct": 3}


async def test_update_user_sets_license_user_type_and_alexa_metadata(
    chime: Any, emulator: RunningEmulator
) -> None:
    account_id = await first_account(emulator)
    user_id = emulator.state.users(account_id)[0].user_id
    # UserType and AlexaForBusinessMetadata are newer than the seed model; current SDKs
    # send them, and the emulator serves them as botocore's current model defines them.
    answer = await chime.update_user(
        AccountId=account_id,
        UserId=user_id,
        LicenseType="Basic",
        UserType="SharedDevice",
        AlexaForBusinessMetadata={"IsAlexaForBusinessEnabled": False},
    )
    assert answer["User"]["LicenseType"] == "Basic"
    assert answer["User"]["UserType"] == "SharedDevice"
    assert answer["User"]["AlexaForBusinessMetadata"] == {"IsAlexaForBusinessEnabled": False}
    user = emulator.state.get_user(account_id, user_id)
    assert user is not None and (user.license_type, user.user_type) == ("Basic", "SharedDevice")


async def test_logout_and_reset_pin(chime: Any, emulator: RunningEmulator) -> None:
    account_id = await first_account(emulator)
    user_id = emulator.state.users(account_id)[0].user_id
    answer = await chime.logout_user(AccountId=account_id, UserId=user_id)
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 204
    pins = [
        (await chime.reset_personal_pin(AccountId=account_id, UserId=user_id))["User"][
            "PersonalPIN"
        ]
        for _ in range(2)
    ]
    assert all(re.fullmatch(r"\d{10}", pin) for pin in pins) and pins[0] != pins[1]
    user = emulator.state.get_user(account_id, user_id)
    assert user is not None and user.personal_pin == pins[1]
    with pytest.raises(chime.exceptions.NotFoundException):
        await chime.logout_user(AccountId=account_id, UserId="ghost")
    effects = emulator.stats()["effects"]
    assert effects["ResetPersonalPIN"] == {"total": 2, "distinct": 1}
    assert effects["LogoutUser"] == {"total": 1, "distinct": 1}


# ---------------------------------------------------------------- Team accounts


async def test_invites_only_for_team_accounts(chime: Any, emulator: RunningEmulator) -> None:
    account_id = await first_account(emulator)
    with pytest.raises(chime.exceptions.BadRequestException) as info:
        await chime.invite_users(AccountId=account_id, UserEmailList=["new@example.com"])
    assert "Team" in info.value.response["Error"]["Message"]
    assert emulator.stats()["effects"]["InviteUsers"]["total"] == 0


async def test_invite_and_resend(chime: Any, emulator: RunningEmulator) -> None:
    team = (await chime.create_account(Name="Newcomers"))["Account"]["AccountId"]
    first = await chime.invite_users(AccountId=team, UserEmailList=["Ann@Example.com"])
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 201
    [invite] = first["Invites"]
    assert invite["Status"] == "Pending" and invite["EmailStatus"] == "Sent"
    assert invite["EmailAddress"] == "Ann@Example.com" and UUID.match(invite["InviteId"])
    users = (await chime.list_users(AccountId=team))["Users"]
    assert [
        (u["PrimaryEmail"], u["UserRegistrationStatus"], u["UserInvitationStatus"]) for u in users
    ] == [("Ann@Example.com", "Unregistered", "Pending")]
    assert users[0]["LicenseType"] == "Pro"
    again = await chime.invite_users(AccountId=team, UserEmailList=["ann@example.com"])
    assert again["Invites"][0]["EmailStatus"] == "Sent"  # sent again: one more effect
    assert len(emulator.state.users(team)) == 1
    assert emulator.stats()["effects"]["InviteUsers"] == {"total": 2, "distinct": 1}


async def test_team_suspend_dissociates_and_reinvite_undoes(
    chime: Any, emulator: RunningEmulator
) -> None:
    team = (await chime.create_account(Name="Team"))["Account"]["AccountId"]
    await chime.invite_users(AccountId=team, UserEmailList=["a@example.com", "b@example.com"])
    leaver = emulator.state.find_user_by_email(team, "a@example.com")
    assert leaver is not None
    await chime.batch_suspend_user(AccountId=team, UserIdList=[leaver.user_id])
    listed = [u["PrimaryEmail"] for u in (await chime.list_users(AccountId=team))["Users"]]
    assert listed == ["b@example.com"]
    with pytest.raises(chime.exceptions.NotFoundException):
        await chime.get_user(AccountId=team, UserId=leaver.user_id)
    with pytest.raises(chime.exceptions.BadRequestException):
        await chime.batch_unsuspend_user(AccountId=team, UserIdList=[leaver.user_id])
    await chime.invite_users(AccountId=team, UserEmailList=["a@example.com"])
    back = await chime.get_user(AccountId=team, UserId=leaver.user_id)
    assert back["User"]["UserInvitationStatus"] == "Pending"
    assert [u.primary_email for u in emulator.state.users(team)] == [
        "b@example.com",
        "a@example.com",
    ]


async def test_team_licenses_are_limited(chime: Any, emulator: RunningEmulator) -> None:
    team = (await chime.create_account(Name="Team"))["Account"]["AccountId"]
    await chime.invite_users(AccountId=team, UserEmailList=["a@example.com"])
    user_id = emulator.state.users(team)[0].user_id
    answer = await chime.batch_update_user(
        AccountId=team,
        UpdateUserRequestItems=[{"UserId": user_id, "LicenseType": "Plus"}],
    )
    assert [e["ErrorCode"] for e in answer["UserErrors"]] == ["BadRequest"]
    with pytest.raises(chime.exceptions.BadRequestException):
        await chime.update_user(AccountId=team, UserId=user_id, LicenseType="ProTrial")
    await chime.update_user(AccountId=team, UserId=user_id, LicenseType="Basic")
    assert emulator.state.users(team)[0].license_type == "Basic"


# ---------------------------------------------------------------- validation


async def test_model_validation_errors(chime: Any, emulator: RunningEmulator) -> None:
    account_id = await first_account(emulator)
    user_id = emulator.state.users(account_id)[0].user_id
    team = (await chime.create_account(Name="Team"))["Account"]["AccountId"]
    bad_calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "enum": lambda: chime.update_user(AccountId=account_id, UserId=user_id, LicenseType="Gold"),
        "item enum": lambda: chime.batch_update_user(
            AccountId=account_id, UpdateUserRequestItems=[{"UserId": user_id, "LicenseType": "X"}]
        ),
        "email pattern": lambda: chime.list_users(AccountId=account_id, UserEmail="not-an-email"),
        "invite pattern": lambda: chime.invite_users(AccountId=team, UserEmailList=["nope"]),
        "blank name": lambda: chime.create_account(Name="   "),
        "long name": lambda: chime.create_account(Name="x" * 101),
        "51 ids": lambda: chime.batch_suspend_user(AccountId=account_id, UserIdList=["u"] * 51),
        "51 unsuspend": lambda: chime.batch_unsuspend_user(
            AccountId=account_id, UserIdList=["u"] * 51
        ),
        "51 emails": lambda: chime.invite_users(AccountId=team, UserEmailList=["a@b.co"] * 51),
        "21 items": lambda: chime.batch_update_user(
            AccountId=account_id, UpdateUserRequestItems=[{"UserId": user_id}] * 21
        ),
        "max results 0": lambda: chime.list_users(AccountId=account_id, MaxResults=0),
        "max results 201": lambda: chime.list_accounts(MaxResults=201),
        "missing list": lambda: chime.batch_suspend_user(AccountId=account_id),
        "missing name": lambda: chime.create_account(),
        "missing item id": lambda: chime.batch_update_user(
            AccountId=account_id, UpdateUserRequestItems=[{"LicenseType": "Pro"}]
        ),
        "blank id": lambda: chime.batch_suspend_user(AccountId=account_id, UserIdList=[" "]),
        "settings type": lambda: chime.update_account_settings(
            AccountId=account_id, AccountSettings={"EnableDialOut": "yes"}
        ),
        "user type": lambda: chime.update_user(
            AccountId=account_id, UserId=user_id, UserType="Kiosk"
        ),
        "item user type": lambda: chime.batch_update_user(
            AccountId=account_id, UpdateUserRequestItems=[{"UserId": user_id, "UserType": "X"}]
        ),
        "user type filter": lambda: chime.list_users(AccountId=account_id, UserType="Bogus"),
        "default license": lambda: chime.update_account(
            AccountId=account_id, DefaultLicense="Gold"
        ),
        "alexa type": lambda: chime.update_user(
            AccountId=account_id,
            UserId=user_id,
            AlexaForBusinessMetadata={"IsAlexaForBusinessEnabled": "yes"},
        ),
    }
    for name, call in bad_calls.items():
        with pytest.raises(chime.exceptions.BadRequestException) as info:
            await call()
        assert error_of(info) == (400, "BadRequestException", "BadRequest"), name
        assert "validation error" in info.value.response["Error"]["Message"], name
    assert (await chime.list_users(AccountId=account_id, MaxResults=200))["Users"]
    assert (await chime.batch_suspend_user(AccountId=account_id, UserIdList=["u"] * 50))[
        "UserErrors"
    ]
    user = emulator.state.get_user(account_id, user_id)
    assert user is not None and user.license_type != "Gold"
    assert user.user_type == "PrivateUser" and user.alexa_for_business is None


async def test_messages_do_not_echo_sensitive_values(chime: Any, emulator: RunningEmulator) -> None:
    account_id = await first_account(emulator)
    with pytest.raises(chime.exceptions.BadRequestException) as info:
        await chime.list_users(AccountId=account_id, UserEmail="secret-value")
    assert "secret-value" not in info.value.response["Error"]["Message"]
    assert "UserEmail" in info.value.response["Error"]["Message"]


# ---------------------------------------------------------------- counting


async def test_stats_count_requests_and_effects_exactly(
    chime: Any, emulator: RunningEmulator
) -> None:
    account_id = await first_account(emulator)
    ids = [u.user_id for u in emulator.state.users(account_id)[:4]]
    await chime.list_users(AccountId=account_id, MaxResults=2)
    await chime.batch_suspend_user(AccountId=account_id, UserIdList=[*ids, "ghost"])
    await chime.batch_suspend_user(AccountId=account_id, UserIdList=ids[:2])
    with pytest.raises(ClientError):
        await chime.batch_suspend_user(AccountId=account_id, UserIdList=["x"] * 51)
    stats = emulator.stats()
    assert stats["requests"]["ListUsers"] == 1
    assert stats["requests"]["BatchSuspendUser"] == 3
    assert sum(stats["requests"].values()) == 4
    assert stats["effects"]["BatchSuspendUser"] == {"total": 6, "distinct": 4}
    assert set(stats["effects"]) == {
        "BatchSuspendUser", "BatchUnsuspendUser", "BatchUpdateUser", "CreateAccount",
        "DeleteAccount", "InviteUsers", "LogoutUser", "ResetPersonalPIN", "UpdateAccount",
        "UpdateAccountSettings", "UpdateUser",
    }  # fmt: skip
    assert stats["throttled"] == 0 and stats["faults"] == 0

"""The emulator follows the service as current SDKs call it (issue 15).

The seed model is the base of the 16 operations; the members botocore's current model
gives them (``UserType``, ``AlexaForBusinessMetadata``, ``DefaultLicense``,
``AccountStatus``, ``SigninDelegateGroups``, ``PrimaryProvisionedNumber``) are served
with real semantics and validated from the model; operations the emulator does not serve
are named in an ``UnknownOperationException``. Driven through boto3 (botocore's client
when boto3 is not installed: it is the same client) and the AWS CLI (skipped without it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, DataNotFoundError, UnknownServiceError

from bulkchime.emulator import RunningEmulator, service_model
from bulkchime.emulator._model import current_document, seed_document, served_document
from bulkchime.emulator._vendor import current_subset, installed_model

SHARED = "SharedDevice"


def _client(emulator: RunningEmulator) -> Any:
    """A Chime client as a script makes one: boto3's, else botocore's (the same class)."""
    try:
        import boto3

        make: Any = boto3.session.Session().client
    except ImportError:  # boto3 is in the bench extra; botocore is always installed
        import botocore.session

        make = botocore.session.get_session().create_client
    return make(
        "chime",
        region_name="us-east-1",
        endpoint_url=emulator.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )


@pytest.fixture
def chime(emulator: RunningEmulator) -> Iterator[Any]:
    client = _client(emulator)
    yield client
    client.close()


def _refused(info: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    """(HTTP status, error code, message) of a refused call."""
    response: Any = info.value.response
    error = response["Error"]
    return response["ResponseMetadata"]["HTTPStatusCode"], error["Code"], error["Message"]


def _account(emulator: RunningEmulator) -> str:
    return emulator.state.account_ids()[0]


# ---------------------------------------------------------------- the model


def test_vendored_model_is_the_installed_botocore_model() -> None:
    """A botocore upgrade that changes the 16 operations (or adds operations) fails here:
    cut the model again (see bulkchime/emulator/_vendor.py) and serve the new members."""
    try:
        installed = installed_model()
    except (UnknownServiceError, DataNotFoundError):
        pytest.skip("this botocore has no Chime model: the vendored one is all there is")
    assert current_document() == current_subset(installed)


def test_served_model_is_the_seed_plus_the_current_members() -> None:
    seed, current = seed_document(), current_document()
    served = served_document(seed, current)
    assert served["operations"] == seed["operations"]  # URIs, errors: the seed's
    for name, shape in current["shapes"].items():
        members = served["shapes"][name].get("members", {})
        assert set(shape.get("members", {})) <= set(members), name
    for name, shape in seed["shapes"].items():
        for member, ref in shape.get("members", {}).items():
            assert served["shapes"][name]["members"][member] == ref
    list_users = service_model().operation_model("ListUsers").input_shape.members
    assert list_users["UserType"].serialization == {"location": "querystring", "name": "user-type"}
    assert list_users["UserType"].enum == ["PrivateUser", SHARED]


def test_members_neither_model_has_are_ignored(chime: Any, emulator: RunningEmulator) -> None:
    account = _account(emulator)
    user = emulator.state.users(account)[0]
    sent: list[bytes] = []

    def add_unknown(params: dict[str, Any], **_: Any) -> None:
        body = {**json.loads(params["body"]), "FavouriteColour": "blue"}
        params["body"] = json.dumps(body).encode()

    def capture(request: Any, **_: Any) -> None:
        sent.append(request.body)

    chime.meta.events.register("before-call.chime.UpdateUser", add_unknown)
    chime.meta.events.register("before-send.chime.UpdateUser", capture)
    answer = chime.update_user(AccountId=account, UserId=user.user_id, LicenseType="Plus")
    assert b'"FavouriteColour"' in sent[0]
    assert answer["User"]["LicenseType"] == "Plus" and "FavouriteColour" not in answer["User"]


# ---------------------------------------------------------------- users


def test_seed_gives_some_users_the_shared_device_type(emulator: RunningEmulator) -> None:
    for account in emulator.state.account_ids():
        types = [user.user_type for user in emulator.state.users(account)]
        assert 0 < types.count(SHARED) < len(types) // 4
        assert set(types) == {"PrivateUser", SHARED}


def test_list_users_filters_by_user_type(chime: Any, emulator: RunningEmulator) -> None:
    account = _account(emulator)
    users = emulator.state.users(account)
    shared = [u.user_id for u in users if u.user_type == SHARED]
    paginator = chime.get_paginator("list_users")
    pages = paginator.paginate(AccountId=account, UserType=SHARED, PaginationConfig={"PageSize": 3})
    listed = [user for page in pages for user in page["Users"]]
    assert [u["UserId"] for u in listed] == shared
    assert {u["UserType"] for u in listed} == {SHARED}
    private = chime.list_users(AccountId=account, UserType="PrivateUser", MaxResults=200)
    assert len(private["Users"]) == len(users) - len(shared)
    everyone = chime.list_users(AccountId=account, MaxResults=200)["Users"]
    assert len(everyone) == len(users)  # no filter: every user, each with its type
    assert {u["UserType"] for u in everyone} == {"PrivateUser", SHARED}

    email = emulator.state.get_user(account, shared[0]).primary_email  # type: ignore[union-attr]
    by_email = chime.list_users(AccountId=account, UserEmail=email, UserType="PrivateUser")
    assert by_email["Users"] == []  # both filters apply
    token = chime.list_users(AccountId=account, UserType=SHARED, MaxResults=1)["NextToken"]
    with pytest.raises(chime.exceptions.BadRequestException):  # another listing's token
        chime.list_users(AccountId=account, NextToken=token)


def test_bad_user_types_are_refused_with_the_models_error(
    chime: Any, emulator: RunningEmulator
) -> None:
    account = _account(emulator)
    user = emulator.state.users(account)[0]
    team = chime.create_account(Name="Rooms")["Account"]["AccountId"]
    calls = [
        lambda: chime.list_users(AccountId=account, UserType="Bogus"),
        lambda: chime.invite_users(AccountId=team, UserEmailList=["a@example.com"], UserType="X"),
        lambda: chime.update_user(AccountId=account, UserId=user.user_id, UserType="Bogus"),
        lambda: chime.batch_update_user(
            AccountId=account, UpdateUserRequestItems=[{"UserId": user.user_id, "UserType": "X"}]
        ),
    ]
    for call in calls:
        with pytest.raises(chime.exceptions.BadRequestException) as info:
            call()
        status, code, message = _refused(info)
        assert (status, code) == (400, "BadRequestException")
        assert "UserType' must be one of PrivateUser, SharedDevice" in message
    assert user.user_type == "PrivateUser" and emulator.state.users(team) == []


def test_update_user_and_batch_items_store_the_user_type(
    chime: Any, emulator: RunningEmulator
) -> None:
    account = _account(emulator)
    first, second, third = emulator.state.users(account)[:3]
    answer = chime.update_user(AccountId=account, UserId=first.user_id, UserType=SHARED)
    assert answer["User"]["UserType"] == SHARED and first.user_type == SHARED
    got = chime.get_user(AccountId=account, UserId=first.user_id)["User"]
    assert got["UserType"] == SHARED

    metadata = {"IsAlexaForBusinessEnabled": True, "AlexaForBusinessRoomArn": "arn:room/1"}
    items = [
        {"UserId": second.user_id, "UserType": SHARED, "AlexaForBusinessMetadata": metadata},
        {"UserId": third.user_id, "UserType": SHARED, "LicenseType": "Basic"},
        {"UserId": first.user_id, "UserType": "PrivateUser"},
    ]
    answer = chime.batch_update_user(AccountId=account, UpdateUserRequestItems=items)
    assert answer["UserErrors"] == []
    assert (second.user_type, third.user_type, first.user_type) == (SHARED, SHARED, "PrivateUser")
    assert third.license_type == "Basic"
    shown = chime.get_user(AccountId=account, UserId=second.user_id)["User"]
    assert shown["AlexaForBusinessMetadata"] == metadata
    # Members not given are kept.
    chime.update_user(
        AccountId=account,
        UserId=second.user_id,
        AlexaForBusinessMetadata={"IsAlexaForBusinessEnabled": False},
    )
    shown = chime.get_user(AccountId=account, UserId=second.user_id)["User"]
    assert shown["AlexaForBusinessMetadata"] == {**metadata, "IsAlexaForBusinessEnabled": False}
    assert shown["UserType"] == SHARED


def test_invites_give_the_user_type(chime: Any, emulator: RunningEmulator) -> None:
    team = chime.create_account(Name="Rooms")["Account"]["AccountId"]
    chime.invite_users(AccountId=team, UserEmailList=["room1@example.com"], UserType=SHARED)
    chime.invite_users(AccountId=team, UserEmailList=["ada@example.com"])
    types = {u.primary_email: u.user_type for u in emulator.state.users(team)}
    assert types == {"room1@example.com": SHARED, "ada@example.com": "PrivateUser"}


def test_primary_provisioned_number_is_returned_when_the_user_has_one(
    chime: Any, emulator: RunningEmulator
) -> None:
    account = _account(emulator)
    user = emulator.state.users(account)[0]
    assert (
        "PrimaryProvisionedNumber"
        not in chime.get_user(AccountId=account, UserId=user.user_id)["User"]
    )
    # No served operation assigns phone numbers; a test may give one through the state.
    user.primary_provisioned_number = "+12065550100"
    shown = chime.get_user(AccountId=account, UserId=user.user_id)["User"]
    assert shown["PrimaryProvisionedNumber"] == "+12065550100"
    listed = chime.list_users(AccountId=account, MaxResults=1)["Users"][0]
    assert listed["PrimaryProvisionedNumber"] == "+12065550100"


# ---------------------------------------------------------------- accounts


def test_accounts_have_a_status_and_signin_delegate_groups(
    chime: Any, emulator: RunningEmulator
) -> None:
    for account in chime.list_accounts()["Accounts"]:
        assert account["AccountStatus"] == "Active"
        assert account["SigninDelegateGroups"] == []
    account = emulator.state.accounts()[0]
    account.signin_delegate_groups = ("chime-admins",)
    got = chime.get_account(AccountId=account.account_id)["Account"]
    assert got["SigninDelegateGroups"] == [{"GroupName": "chime-admins"}]
    team = chime.create_account(Name="Team")["Account"]
    assert (team["AccountStatus"], team["SigninDelegateGroups"]) == ("Active", [])


def test_update_account_sets_the_default_license(chime: Any, emulator: RunningEmulator) -> None:
    account_id = _account(emulator)
    answer = chime.update_account(AccountId=account_id, DefaultLicense="Basic")
    assert answer["Account"]["DefaultLicense"] == "Basic"
    assert chime.get_account(AccountId=account_id)["Account"]["DefaultLicense"] == "Basic"
    account = emulator.state.get_account(account_id)
    assert account is not None and (account.default_license, account.name) == (
        "Basic",
        "Example Corp 1",
    )
    with pytest.raises(chime.exceptions.BadRequestException) as info:
        chime.update_account(AccountId=account_id, DefaultLicense="Gold")
    status, code, message = _refused(info)
    assert (status, code) == (400, "BadRequestException")
    assert "DefaultLicense' must be one of Basic, Plus, Pro, ProTrial" in message
    assert account.default_license == "Basic"


def test_a_default_license_must_be_one_the_account_supports(
    chime: Any, emulator: RunningEmulator
) -> None:
    team = chime.create_account(Name="Team")["Account"]["AccountId"]
    for license_type in ("Plus", "ProTrial"):
        with pytest.raises(chime.exceptions.BadRequestException) as info:
            chime.update_account(AccountId=team, Name="Renamed", DefaultLicense=license_type)
        status, code, message = _refused(info)
        assert (status, code) == (400, "BadRequestException")
        assert f"license {license_type} is not supported by Team account" in message
        assert "(supported: Basic, Pro)" in message
    account = emulator.state.get_account(team)
    assert account is not None and (account.default_license, account.name) == ("Pro", "Team")
    chime.update_account(AccountId=team, DefaultLicense="Basic")
    chime.invite_users(AccountId=team, UserEmailList=["new@example.com"])
    assert [u.license_type for u in emulator.state.users(team)] == ["Basic"]  # the new default


# ---------------------------------------------------------------- operations not served


def test_operations_not_served_are_unknown_operations_not_not_found(chime: Any) -> None:
    calls = {
        "ListPhoneNumbers": lambda: chime.list_phone_numbers(),
        "CreateUser": lambda: chime.create_user(AccountId="a", Email="a@example.com"),
        "GetUserSettings": lambda: chime.get_user_settings(AccountId="a", UserId="u"),
    }
    for operation, call in calls.items():
        with pytest.raises(ClientError) as info:
            call()
        status, code, message = _refused(info)
        assert (status, code) == (404, "UnknownOperationException"), operation
        assert message.startswith(f"{operation} is not served: this emulator serves only the 16")
        assert "seed model chime-2018-05-01" in message


# ---------------------------------------------------------------- the AWS CLI


def _aws(emulator: RunningEmulator, *args: str) -> tuple[int, Any, str]:
    """``aws chime ARGS`` against the emulator: exit code, parsed stdout, stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    done = subprocess.run(
        ["aws", "chime", *args, "--endpoint-url", emulator.url, "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None, done.stderr


needs_aws = pytest.mark.skipif(
    shutil.which("aws") is None, reason="the AWS CLI (aws) is not on PATH"
)


@needs_aws
def test_aws_cli_user_types(emulator: RunningEmulator) -> None:
    account = _account(emulator)
    users = emulator.state.users(account)
    shared = [u.user_id for u in users if u.user_type == SHARED]

    code, listed, err = _aws(emulator, "list-users", "--account-id", account, "--user-type", SHARED)
    assert code == 0, err
    assert [u["UserId"] for u in listed["Users"]] == shared
    code, _, err = _aws(emulator, "list-users", "--account-id", account, "--user-type", "Bogus")
    assert code != 0 and "(BadRequestException)" in err and "UserType" in err

    target = next(u for u in users if u.user_type == "PrivateUser")
    update = ["update-user", "--account-id", account, "--user-id", target.user_id]
    code, answer, err = _aws(emulator, *update, "--user-type", SHARED)
    assert code == 0, err
    assert answer["User"]["UserType"] == SHARED and target.user_type == SHARED
    code, _, err = _aws(emulator, *update, "--user-type", "Bogus")
    assert code != 0 and "(BadRequestException)" in err and target.user_type == SHARED

    batch = ["batch-update-user", "--account-id", account, "--update-user-request-items"]
    code, answer, err = _aws(emulator, *batch, f"UserId={target.user_id},UserType=PrivateUser")
    assert code == 0 and answer["UserErrors"] == [], err
    assert target.user_type == "PrivateUser"
    code, _, err = _aws(emulator, *batch, f"UserId={target.user_id},UserType=Kiosk")
    assert code != 0 and "(BadRequestException)" in err and target.user_type == "PrivateUser"


@needs_aws
def test_aws_cli_default_license_and_operations_not_served(emulator: RunningEmulator) -> None:
    account = emulator.state.accounts()[0]
    update = ["update-account", "--account-id", account.account_id, "--default-license"]
    code, answer, err = _aws(emulator, *update, "Basic")
    assert code == 0, err
    assert answer["Account"]["DefaultLicense"] == "Basic" == account.default_license
    assert answer["Account"]["AccountStatus"] == "Active"
    code, _, err = _aws(emulator, *update, "Gold")
    assert code != 0 and "(BadRequestException)" in err and account.default_license == "Basic"

    code, created, err = _aws(emulator, "create-account", "--name", "Team")
    assert code == 0, err
    team = created["Account"]["AccountId"]
    code, _, err = _aws(
        emulator, "update-account", "--account-id", team, "--default-license", "Plus"
    )
    assert code != 0 and "(BadRequestException)" in err and "supported: Basic, Pro" in err

    code, _, err = _aws(emulator, "list-phone-numbers")
    assert code != 0
    assert "(UnknownOperationException) when calling the ListPhoneNumbers operation" in err
    assert "ListPhoneNumbers is not served: this emulator serves only the 16 operations" in err

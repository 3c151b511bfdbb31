"""Handlers of the actions on accounts: one account per request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import PermanentError
from ..lookups import list_accounts
from ._spec import OK, ItemResult, OneItem
from ._users import need

if TYPE_CHECKING:
    from ..lookups import Caller, Lookups
    from ..store import WorkItem

__all__ = [
    "ALREADY_EXISTS",
    "CreateAccount",
    "DeleteAccount",
    "GetSettings",
    "UpdateAccount",
    "UpdateSettings",
]

#: ``update-settings`` parameters and the model's ``AccountSettings`` members.
SETTINGS = (
    ("disable_remote_control", "DisableRemoteControl"),
    ("enable_dial_out", "EnableDialOut"),
)


#: The message of a create-account item whose account existed before: not this job's.
ALREADY_EXISTS = "already exists (found with ListAccounts); not created again"


def _account_id(item: WorkItem) -> str:
    return need(item.account_id or item.key)


def _created(account: Mapping[str, Any], message: str | None = None) -> ItemResult:
    return ItemResult(ok=True, message=message, result={"AccountId": str(account.get("AccountId"))})


class CreateAccount(OneItem):
    """``CreateAccount``: not idempotent (a second call makes a second account of the same
    name), so the name is looked up first, and again after a lost answer."""

    async def send_one(
        self, caller: Caller, account_id: str | None, item: WorkItem, params: Mapping[str, Any]
    ) -> ItemResult:
        existing = await list_accounts(caller, name=item.key)
        if existing:
            return _created(existing[0], ALREADY_EXISTS)
        response = await caller.call("CreateAccount", Name=item.key)
        return _created(response.get("Account", {}))

    async def verify(self, lookups: Lookups, item: WorkItem) -> ItemResult | None:
        accounts = await lookups.list_accounts(name=item.key)
        if not accounts:
            return None
        return _created(accounts[0], "already created (verified with ListAccounts)")


class UpdateAccount(OneItem):
    """``UpdateAccount``: the account's new name and default license (its row's, else the
    job's), when given. The account's name and default license after the
    change go into the report."""

    async def send_one(
        self, caller: Caller, account_id: str | None, item: WorkItem, params: Mapping[str, Any]
    ) -> ItemResult:
        request: dict[str, Any] = {"AccountId": _account_id(item)}
        name = item.fields.get("name") or params.get("name")
        if name:
            request["Name"] = str(name)
        default_license = item.fields.get("default_license") or params.get("default_license")
        if default_license:
            request["DefaultLicense"] = str(default_license)
        if len(request) == 1:  # a row with an empty name cell, in a job that sets nothing else
            return ItemResult(
                ok=False,
                code="NothingToUpdate",
                message="no name: the 'name' cell is empty and the job has no params.name "
                "or params.default_license; not sent",
            )
        account = (await caller.call("UpdateAccount", **request)).get("Account", {})
        kept = ("Name", "DefaultLicense")
        return ItemResult(ok=True, result={k: str(account[k]) for k in kept if account.get(k)})


class DeleteAccount(OneItem):
    """``DeleteAccount``: a 404 after an earlier send means that send deleted it."""

    async def send_one(
        self, caller: Caller, account_id: str | None, item: WorkItem, params: Mapping[str, Any]
    ) -> ItemResult:
        try:
            await caller.call("DeleteAccount", AccountId=_account_id(item))
        except PermanentError as error:
            if error.status == 404 and item.attempts > 0:
                return ItemResult(ok=True, message="already deleted")
            raise
        return OK


class GetSettings(OneItem):
    """``GetAccountSettings``: the settings go into the report."""

    async def send_one(
        self, caller: Caller, account_id: str | None, item: WorkItem, params: Mapping[str, Any]
    ) -> ItemResult:
        response = await caller.call("GetAccountSettings", AccountId=_account_id(item))
        settings = response.get("AccountSettings", {})
        return ItemResult(ok=True, result={k: bool(v) for k, v in settings.items()})


def _flag(value: Any) -> bool:
    """A setting's value: a boolean, or a column's text (``true``/``false``)."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


class UpdateSettings(OneItem):
    """``UpdateAccountSettings``: the settings the row (an undo's) or the job gives."""

    async def send_one(
        self, caller: Caller, account_id: str | None, item: WorkItem, params: Mapping[str, Any]
    ) -> ItemResult:
        settings = {
            model: _flag(item.fields[param] if param in item.fields else params[param])
            for param, model in SETTINGS
            if param in item.fields or param in params
        }
        await caller.call(
            "UpdateAccountSettings", AccountId=_account_id(item), AccountSettings=settings
        )
        return OK

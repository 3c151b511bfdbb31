"""Handlers of the actions on users: batch calls with per-user errors, single-user calls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..constants import RETRYABLE_USER_ERROR_CODES
from ._spec import OK, ItemResult, OneItem, Resend

if TYPE_CHECKING:
    from ..lookups import Caller, Lookups
    from ..store import WorkItem

__all__ = [
    "BatchUsers",
    "Invite",
    "SingleUser",
    "UpdateLicenses",
    "UpdateUser",
    "outcome_unknown",
    "public_user",
]

#: User fields kept in reports and exports. PersonalPIN is a secret, and the phone number
#: and Alexa for Business room (``sensitive`` in the model) are not kept either.
_USER_FIELDS = (
    "UserId",
    "AccountId",
    "PrimaryEmail",
    "DisplayName",
    "LicenseType",
    "UserType",
    "UserRegistrationStatus",
    "UserInvitationStatus",
)


def public_user(user: Mapping[str, Any]) -> dict[str, Any]:
    """A user record without secrets, with JSON-ready values."""
    return {name: str(user[name]) for name in _USER_FIELDS if user.get(name) is not None}


def need(value: str | None) -> str:
    """*value*, which the request cannot do without."""
    if value is None:
        raise ValueError("item is missing a value the request needs")
    return value


def outcome_unknown(action: str) -> ItemResult:
    """The verdict on a lost answer that the service cannot be asked about."""
    return ItemResult(
        ok=False,
        code="OutcomeUnknown",
        message=(
            f"{action} was sent but its outcome was lost (crash or timeout), and the service "
            "cannot tell whether it took effect; not repeated. HINT: check the user, then "
            "--retry-failed"
        ),
    )


def _per_user(response: Mapping[str, Any], user_ids: Sequence[str]) -> list[ItemResult]:
    """One result per user id from a batch answer's ``UserErrors``."""
    errors = {str(e.get("UserId")): e for e in response.get("UserErrors", [])}
    results: list[ItemResult] = []
    for user_id in user_ids:
        error = errors.get(user_id)
        if error is None:
            results.append(OK)
            continue
        code = str(error.get("ErrorCode") or "Unknown")
        results.append(
            ItemResult(
                ok=False,
                retryable=code in RETRYABLE_USER_ERROR_CODES,
                code=code,
                message=str(error.get("ErrorMessage") or ""),
            )
        )
    return results


class BatchUsers(Resend):
    """``BatchSuspendUser`` / ``BatchUnsuspendUser``: a list of user ids, an answer with
    per-user errors."""

    def __init__(self, operation: str) -> None:
        self.operation = operation

    def body(
        self, user_ids: list[str], items: Sequence[WorkItem], params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The request's members besides the account."""
        return {"UserIdList": user_ids}

    async def send(
        self,
        caller: Caller,
        account_id: str | None,
        items: Sequence[WorkItem],
        params: Mapping[str, Any],
    ) -> list[ItemResult]:
        user_ids = [need(item.user_id) for item in items]
        body = self.body(user_ids, items, params)
        response = await caller.call(self.operation, AccountId=need(account_id), **body)
        return self.results(_per_user(response, user_ids), items, params)

    def results(
        self, results: list[ItemResult], items: Sequence[WorkItem], params: Mapping[str, Any]
    ) -> list[ItemResult]:
        """The per-user results, with what the report keeps of each success."""
        return results


def _license(item: WorkItem, params: Mapping[str, Any]) -> str:
    """The license *item* gets: its row's, else the job's."""
    return str(item.fields.get("license") or params["license"])


class UpdateLicenses(BatchUsers):
    """``BatchUpdateUser``: each user's license (its row's, else the job's)."""

    def __init__(self) -> None:
        super().__init__("BatchUpdateUser")

    def body(
        self, user_ids: list[str], items: Sequence[WorkItem], params: Mapping[str, Any]
    ) -> dict[str, Any]:
        entries = [
            {"UserId": user_id, "LicenseType": _license(item, params)}
            for user_id, item in zip(user_ids, items, strict=True)
        ]
        return {"UpdateUserRequestItems": entries}

    def results(
        self, results: list[ItemResult], items: Sequence[WorkItem], params: Mapping[str, Any]
    ) -> list[ItemResult]:
        """Each migrated user's new license goes into the report (undo and verify read it)."""
        return [
            ItemResult(ok=True, result={"LicenseType": _license(item, params)}) if r.ok else r
            for r, item in zip(results, items, strict=True)
        ]


class Invite:
    """``InviteUsers``: not idempotent (each send emails again), verified with ListUsers."""

    async def send(
        self,
        caller: Caller,
        account_id: str | None,
        items: Sequence[WorkItem],
        params: Mapping[str, Any],
    ) -> list[ItemResult]:
        emails = [need(item.email) for item in items]
        response = await caller.call(
            "InviteUsers", AccountId=need(account_id), UserEmailList=emails
        )
        invites = {
            str(invite.get("EmailAddress", "")).lower(): invite
            for invite in response.get("Invites", [])
        }
        return [self._result(invites.get(email.lower())) for email in emails]

    @staticmethod
    def _result(invite: Mapping[str, Any] | None) -> ItemResult:
        if invite is None:
            return ItemResult(ok=False, code="NotInvited", message="the service returned no invite")
        if invite.get("Status") == "Failed" or invite.get("EmailStatus") == "Failed":
            return ItemResult(
                ok=False,
                code="InviteFailed",
                message=f"invite status {invite.get('Status')}, email {invite.get('EmailStatus')}",
            )
        return ItemResult(ok=True, result={"InviteId": str(invite.get("InviteId"))})

    async def verify(self, lookups: Lookups, item: WorkItem) -> ItemResult | None:
        if not (item.account_id and item.email):
            return None
        user = await lookups.find_user(item.account_id, item.email)
        if user is None:
            return None
        return ItemResult(
            ok=True,
            message="already invited: the email is in the account (ListUsers)",
            result={"UserId": str(user.get("UserId"))},
        )


class UpdateUser(OneItem):
    """``UpdateUser``: the license and the user type (the row's, else the job's), when
    given. The user's license and type after the change go into the report."""

    async def send_one(
        self, caller: Caller, account_id: str | None, item: WorkItem, params: Mapping[str, Any]
    ) -> ItemResult:
        request: dict[str, Any] = {"AccountId": need(account_id), "UserId": need(item.user_id)}
        license_type = item.fields.get("license") or params.get("license")
        if license_type:
            request["LicenseType"] = str(license_type)
        user_type = item.fields.get("user_type") or params.get("user_type")
        if user_type:
            request["UserType"] = str(user_type)
        user = (await caller.call("UpdateUser", **request)).get("User", {})
        kept = ("LicenseType", "UserType")
        return ItemResult(ok=True, result={k: str(user[k]) for k in kept if user.get(k)})


class SingleUser(OneItem):
    """One user per request: ``LogoutUser``, ``ResetPersonalPIN``, ``GetUser``.

    :param operation: the model's operation.
    :param returns_user: whether the answer's user goes into the report.
    :param idempotent: whether a lost answer may simply be sent again; when not, nobody
        can tell whether it took effect (a new PIN is not visible anywhere).
    """

    def __init__(
        self,
        operation: str,
        *,
        returns_user: bool = False,
        idempotent: bool = True,
        action: str = "",
    ) -> None:
        self.operation = operation
        self.returns_user = returns_user
        self.idempotent = idempotent
        self.action = action

    async def send_one(
        self, caller: Caller, account_id: str | None, item: WorkItem, params: Mapping[str, Any]
    ) -> ItemResult:
        request: dict[str, Any] = {"AccountId": need(account_id), "UserId": need(item.user_id)}
        # A reset PIN is in the answer; it is a secret and is not kept anywhere.
        response = await caller.call(self.operation, **request)
        if self.returns_user:
            return ItemResult(ok=True, result=public_user(response.get("User", {})))
        return OK

    async def verify(self, lookups: Lookups, item: WorkItem) -> ItemResult | None:
        return None if self.idempotent else outcome_unknown(self.action)

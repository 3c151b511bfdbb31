"""The 16 operations, applied to the state with the service's semantics.

Account types behave as the model's documentation says: seeded ``EnterpriseLWA``
accounts suspend users in place, ``Team`` accounts (made by CreateAccount) are the only
ones that take invites and dissociate the users they suspend.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from ._errors import ChimeError, bad_request, not_found
from ._faults import FaultInjector
from ._ids import IdSource
from ._model import operation_model
from ._records import Account, AlexaForBusiness, User
from ._state import EmulatorState, email_key
from ._stats import Stats
from ._wire import account_json, decode_token, encode_token, settings_json, user_json

__all__ = ["Operations"]

Params = dict[str, Any]
Document = dict[str, Any] | None

TEAM: Final = "Team"
TEAM_LICENSES: Final = ("Basic", "Pro")
DEFAULT_MAX_RESULTS: Final = 100


def _now() -> datetime:
    return datetime.now(UTC)


def _user_error(user_id: str, code: str, message: str) -> dict[str, str]:
    return {"UserId": user_id, "ErrorCode": code, "ErrorMessage": message}


def _alexa(current: AlexaForBusiness | None, metadata: Mapping[str, Any]) -> AlexaForBusiness:
    """*current* with the members an ``AlexaForBusinessMetadata`` gives replaced."""
    current = current or AlexaForBusiness()
    enabled = metadata.get("IsAlexaForBusinessEnabled")
    room_arn = metadata.get("AlexaForBusinessRoomArn")
    return AlexaForBusiness(
        current.enabled if enabled is None else enabled,
        current.room_arn if room_arn is None else room_arn,
    )


class Operations:
    """Applies validated requests to the state, counting effects as it goes."""

    def __init__(
        self,
        state: EmulatorState,
        stats: Stats,
        faults: FaultInjector,
        ids: IdSource,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._state = state
        self._stats = stats
        self._faults = faults
        self._ids = ids
        self._clock = clock
        self._handlers: dict[str, Callable[[Params], Document]] = {
            "BatchSuspendUser": self.batch_suspend_user,
            "BatchUnsuspendUser": self.batch_unsuspend_user,
            "BatchUpdateUser": self.batch_update_user,
            "CreateAccount": self.create_account,
            "DeleteAccount": self.delete_account,
            "GetAccount": self.get_account,
            "GetAccountSettings": self.get_account_settings,
            "GetUser": self.get_user,
            "InviteUsers": self.invite_users,
            "ListAccounts": self.list_accounts,
            "ListUsers": self.list_users,
            "LogoutUser": self.logout_user,
            "ResetPersonalPIN": self.reset_personal_pin,
            "UpdateAccount": self.update_account,
            "UpdateAccountSettings": self.update_account_settings,
            "UpdateUser": self.update_user,
        }

    def run(self, operation: str, params: Params) -> tuple[int, Document]:
        """Apply one validated request: the model's status code and the response body."""
        document = self._handlers[operation](params)
        status: int = operation_model(operation).http.get("responseCode", 200)
        return status, document

    # ---- look-ups

    def _account(self, params: Params) -> Account:
        account = self._state.get_account(params["AccountId"])
        if account is None:
            raise not_found(f"The account {params['AccountId']} does not exist.")
        return account

    def _user(self, params: Params) -> User:
        account = self._account(params)
        user = self._state.get_user(account.account_id, params["UserId"])
        if user is None:
            raise not_found(
                f"The user {params['UserId']} does not exist in account {account.account_id}."
            )
        return user

    def _check_license(self, account: Account, license_type: str) -> str | None:
        if license_type in account.supported_licenses:
            return None
        return (
            f"The license {license_type} is not supported by {account.account_type} account "
            f"{account.account_id} (supported: {', '.join(account.supported_licenses)})."
        )

    def _change_user(self, account: Account, user: User, changes: Mapping[str, Any]) -> str | None:
        """Apply the changes of an UpdateUser request or a BatchUpdateUser item; when one
        is refused, its message, and nothing is changed."""
        license_type = changes.get("LicenseType")
        if license_type is not None:
            problem = self._check_license(account, license_type)
            if problem is not None:
                return problem
            user.license_type = license_type
        if changes.get("UserType") is not None:
            user.user_type = changes["UserType"]
        metadata = changes.get("AlexaForBusinessMetadata")
        if metadata is not None:
            user.alexa_for_business = _alexa(user.alexa_for_business, metadata)
        return None

    # ---- accounts

    def create_account(self, params: Params) -> Document:
        account = Account(
            self._ids.uuid(),
            self._state.aws_account_id,
            params["Name"],
            TEAM,
            self._clock(),
            "Pro",
            TEAM_LICENSES,
        )
        self._state.add_account(account)
        self._stats.effect("CreateAccount", account.name)
        return {"Account": account_json(account)}

    def get_account(self, params: Params) -> Document:
        return {"Account": account_json(self._account(params))}

    def update_account(self, params: Params) -> Document:
        account = self._account(params)
        if "DefaultLicense" in params:
            # The default license is given to users added later: one the account supports.
            problem = self._check_license(account, params["DefaultLicense"])
            if problem is not None:
                raise bad_request(problem)
            account.default_license = params["DefaultLicense"]
        if "Name" in params:
            account.name = params["Name"]
        self._stats.effect("UpdateAccount", account.account_id)
        return {"Account": account_json(account)}

    def delete_account(self, params: Params) -> Document:
        account = self._account(params)
        users = self._state.user_count(account.account_id)
        if account.account_type == TEAM and users:
            raise ChimeError(
                "UnprocessableEntityException",
                f"The Team account {account.account_id} still has {users} "
                f"user{'s' if users > 1 else ''}: suspend them before deleting the account.",
            )
        self._state.remove_account(account.account_id)
        self._stats.effect("DeleteAccount", account.account_id)
        return None

    def list_accounts(self, params: Params) -> Document:
        name: str | None = params.get("Name")
        email: str | None = params.get("UserEmail")
        filters = repr((name, None if email is None else email_key(email))).encode()
        scope = "accounts:" + hashlib.sha256(filters).hexdigest()[:16]
        start = 0
        if "NextToken" in params:
            start = decode_token(params["NextToken"], scope, self._state.account_positions_end())

        def keep(account: Account) -> bool:
            # Name filters by prefix, as the model documents it.
            if name is not None and not account.name.startswith(name):
                return False
            return email is None or (
                self._state.find_user_by_email(account.account_id, email) is not None
            )

        accounts, following = self._state.page_accounts(
            start, params.get("MaxResults", DEFAULT_MAX_RESULTS), keep
        )
        document: dict[str, Any] = {"Accounts": [account_json(a) for a in accounts]}
        if following is not None:
            document["NextToken"] = encode_token(scope, following)
        return document

    def get_account_settings(self, params: Params) -> Document:
        account = self._account(params)
        settings = self._state.settings(account.account_id)
        assert settings is not None
        return {"AccountSettings": settings_json(settings)}

    def update_account_settings(self, params: Params) -> Document:
        account = self._account(params)
        settings = self._state.settings(account.account_id)
        assert settings is not None
        changes = params["AccountSettings"]
        if "DisableRemoteControl" in changes:
            settings.disable_remote_control = changes["DisableRemoteControl"]
        if "EnableDialOut" in changes:
            settings.enable_dial_out = changes["EnableDialOut"]
        self._stats.effect("UpdateAccountSettings", account.account_id)
        return None

    # ---- users

    def list_users(self, params: Params) -> Document:
        account = self._account(params)
        user_type: str | None = params.get("UserType")

        def keep(user: User) -> bool:
            return user.user_type == user_type

        if "UserEmail" in params:
            user = self._state.find_user_by_email(account.account_id, params["UserEmail"])
            if user is None or (user_type is not None and not keep(user)):
                return {"Users": []}
            return {"Users": [user_json(user)]}
        # A token is good for the listing it came from, filter included.
        scope = f"users:{account.account_id}" + ("" if user_type is None else f":{user_type}")
        start = 0
        if "NextToken" in params:
            end = self._state.user_positions_end(account.account_id)
            start = decode_token(params["NextToken"], scope, end)
        users, following = self._state.page_users(
            account.account_id,
            start,
            params.get("MaxResults", DEFAULT_MAX_RESULTS),
            None if user_type is None else keep,
        )
        document: dict[str, Any] = {"Users": [user_json(user) for user in users]}
        if following is not None:
            document["NextToken"] = encode_token(scope, following)
        return document

    def get_user(self, params: Params) -> Document:
        return {"User": user_json(self._user(params))}

    def update_user(self, params: Params) -> Document:
        user = self._user(params)
        problem = self._change_user(self._account(params), user, params)
        if problem is not None:
            raise bad_request(problem)
        self._stats.effect("UpdateUser", user.user_id)
        return {"User": user_json(user)}

    def logout_user(self, params: Params) -> Document:
        user = self._user(params)
        self._stats.effect("LogoutUser", user.user_id)
        return None

    def reset_personal_pin(self, params: Params) -> Document:
        user = self._user(params)
        user.personal_pin = self._ids.personal_pin()
        self._stats.effect("ResetPersonalPIN", user.user_id)
        return {"User": user_json(user)}

    def invite_users(self, params: Params) -> Document:
        account = self._account(params)
        if account.account_type != TEAM:
            raise bad_request(
                f"InviteUsers is supported for Team accounts only; account "
                f"{account.account_id} is {account.account_type}."
            )
        user_type: str | None = params.get("UserType")
        invites = [self._invite(account, email, user_type) for email in params["UserEmailList"]]
        return {"Invites": invites}

    def _invite(self, account: Account, email: str, user_type: str | None) -> dict[str, str]:
        """Invite one email; a user it adds or brings back gets *user_type* when given."""
        account_id = account.account_id
        user = self._state.find_user_by_email(account_id, email)
        invite = {"InviteId": self._ids.uuid(), "EmailAddress": email}
        if user is not None and user.invitation_status == "Accepted":
            # Already a member who accepted: nothing is sent.
            return invite | {"Status": "Accepted", "EmailStatus": "NotSent"}
        now = self._clock()
        if user is not None:  # still pending: the email is sent again
            user.invited_on = now
        else:
            user = self._state.dissociated_user(account_id, email)
            if user is None:
                user = User(
                    user_id=self._ids.uuid(),
                    account_id=account_id,
                    primary_email=email,
                    display_name="",
                    license_type=account.default_license,
                    registration_status="Unregistered",
                    invitation_status="Pending",
                    registered_on=None,
                    invited_on=now,
                )
            else:  # suspended (dissociated) earlier: the invite brings them back
                user.registration_status, user.invitation_status = "Unregistered", "Pending"
                user.invited_on, user.registered_on = now, None
            if user_type is not None:
                user.user_type = user_type
            self._state.add_users(account_id, [user])
        self._stats.effect("InviteUsers", f"{account_id}/{email_key(email)}")
        return invite | {"Status": "Pending", "EmailStatus": "Sent"}

    # ---- batches

    def _batch(
        self,
        operation: str,
        account: Account,
        user_ids: list[str],
        apply: Callable[[User, int], str | None],
    ) -> Document:
        """Apply ``apply`` to each user (given its index in the batch); an error message
        from it, an unknown user or an injected throttle becomes that user's UserError."""
        errors: list[dict[str, str]] = []
        for index, user_id in enumerate(user_ids):
            if self._faults.user_throttled():
                errors.append(_user_error(user_id, "Throttled", "Rate exceeded"))
                continue
            user = self._state.get_user(account.account_id, user_id)
            if user is None:
                message = f"The user {user_id} does not exist in account {account.account_id}."
                errors.append(_user_error(user_id, "NotFound", message))
                continue
            problem = apply(user, index)
            if problem is not None:
                errors.append(_user_error(user_id, "BadRequest", problem))
                continue
            self._stats.effect(operation, user_id)
        return {"UserErrors": errors}

    def batch_suspend_user(self, params: Params) -> Document:
        account = self._account(params)

        def suspend(user: User, _: int) -> None:
            if account.account_type == TEAM:
                self._state.dissociate_user(account.account_id, user.user_id)
            else:
                user.registration_status = "Suspended"

        return self._batch("BatchSuspendUser", account, params["UserIdList"], suspend)

    def batch_unsuspend_user(self, params: Params) -> Document:
        account = self._account(params)
        if account.account_type == TEAM:
            raise bad_request(
                f"BatchUnsuspendUser is not supported for Team account {account.account_id}: "
                "suspended Team users are dissociated; invite them again instead."
            )

        def unsuspend(user: User, _: int) -> None:
            if user.registration_status == "Suspended":
                user.registration_status = "Registered"

        return self._batch("BatchUnsuspendUser", account, params["UserIdList"], unsuspend)

    def batch_update_user(self, params: Params) -> Document:
        account = self._account(params)
        items: list[dict[str, Any]] = params["UpdateUserRequestItems"]

        def update(user: User, index: int) -> str | None:
            return self._change_user(account, user, items[index])

        user_ids = [item["UserId"] for item in items]
        return self._batch("BatchUpdateUser", account, user_ids, update)

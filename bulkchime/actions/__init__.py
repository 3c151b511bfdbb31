"""What each engine action is: its API operation, batch size, keys, parameters and handler.

This package is the one place that knows what an action means. :data:`ACTIONS`
gives each action's limits (the job loader validates against them, the planner
batches by them) and its handler (:class:`ActionHandler`: the request, the reading of
the answer, and how to verify a send whose answer was lost). No other module
compares action names; the engine asks the spec's flags and calls the handler.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._accounts import CreateAccount, DeleteAccount, GetSettings, UpdateAccount, UpdateSettings
from ._spec import ActionHandler, ActionSpec, ItemResult, Target
from ._undo import COLUMNS, Capture, Reversal, cannot_undo, image_of, image_value, reversal
from ._users import (
    BatchUsers,
    Invite,
    SingleUser,
    UpdateLicenses,
    UpdateUser,
    outcome_unknown,
    public_user,
)

__all__ = [
    "ACTIONS",
    "COLUMNS",
    "ActionHandler",
    "ActionSpec",
    "Capture",
    "ItemResult",
    "Reversal",
    "Target",
    "cannot_undo",
    "get_action",
    "image_of",
    "image_value",
    "outcome_unknown",
    "public_user",
    "reversal",
]

_USER_KEYS = ("email", "user_id")
_ACCOUNT_KEYS = ("account_id",)
_USER, _ACCOUNT = Target.USER, Target.ACCOUNT


def _table() -> dict[str, ActionSpec]:
    get_user = SingleUser("GetUser", returns_user=True)
    specs = (
        ActionSpec("suspend", "BatchSuspendUser", 50, True, True, _USER, _USER_KEYS,
                   BatchUsers("BatchSuspendUser")),
        ActionSpec("unsuspend", "BatchUnsuspendUser", 50, True, True, _USER, _USER_KEYS,
                   BatchUsers("BatchUnsuspendUser")),
        ActionSpec("update-license", "BatchUpdateUser", 20, True, True, _USER, _USER_KEYS,
                   UpdateLicenses(), required_params=("license",)),
        ActionSpec("update-user", "UpdateUser", 1, True, True, _USER, _USER_KEYS,
                   UpdateUser(), optional_params=("license", "user_type")),
        ActionSpec("invite", "InviteUsers", 50, False, True, _USER, ("email",), Invite(),
                   needs_user_ids=False, needs_team_account=True),
        ActionSpec("logout", "LogoutUser", 1, True, True, _USER, _USER_KEYS,
                   SingleUser("LogoutUser")),
        ActionSpec("reset-pin", "ResetPersonalPIN", 1, False, True, _USER, _USER_KEYS,
                   SingleUser("ResetPersonalPIN", idempotent=False, action="reset-pin")),
        ActionSpec("get-user", "GetUser", 1, True, False, _USER, _USER_KEYS, get_user),
        # Its items are read from the account, done when read; sent again, each is a GetUser.
        ActionSpec("export-users", "ListUsers", 200, True, False, _USER, _USER_KEYS, get_user,
                   reads_account=True),
        ActionSpec("create-account", "CreateAccount", 1, False, True, _ACCOUNT, ("name",),
                   CreateAccount()),
        ActionSpec("update-account", "UpdateAccount", 1, True, True, _ACCOUNT, _ACCOUNT_KEYS,
                   UpdateAccount(), optional_params=("name", "default_license"),
                   one_of_params=("name", "default_license")),
        ActionSpec("delete-account", "DeleteAccount", 1, True, True, _ACCOUNT, _ACCOUNT_KEYS,
                   DeleteAccount()),
        ActionSpec("get-settings", "GetAccountSettings", 1, True, False, _ACCOUNT,
                   _ACCOUNT_KEYS, GetSettings()),
        ActionSpec("update-settings", "UpdateAccountSettings", 1, True, True, _ACCOUNT,
                   _ACCOUNT_KEYS, UpdateSettings(),
                   optional_params=("disable_remote_control", "enable_dial_out")),
    )  # fmt: skip
    return {spec.name: spec for spec in specs}


#: Every action by its name.
ACTIONS: Mapping[str, ActionSpec] = _table()


def get_action(name: str) -> ActionSpec:
    """Return the action called *name*, or raise ``KeyError`` naming the known ones."""
    try:
        return ACTIONS[name]
    except KeyError:
        known = ", ".join(sorted(ACTIONS))
        raise KeyError(f"unknown action {name!r}; known actions: {known}") from None

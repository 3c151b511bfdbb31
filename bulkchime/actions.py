"""What each engine action is: its API operation, batch size, keys and parameters.

This table is the one place that knows the API's limits per operation; the job
loader validates against it, the planner batches by it and the engine dispatches
on it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ACTIONS", "ActionSpec", "Target", "get_action"]


class Target(enum.Enum):
    """What one item of an action names."""

    USER = "user"
    ACCOUNT = "account"


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One engine action and how it maps onto the API."""

    #: The name used on the command line and in job files.
    name: str
    #: The model's operation name.
    operation: str
    #: Items per request (the model's list maxima; 1 for single-item operations).
    items_per_request: int
    #: Whether sending it again after an unknown outcome is harmless.
    idempotent: bool
    #: Whether it changes anything on the server.
    mutating: bool
    #: What an item is.
    target: Target
    #: Input key columns accepted; the first is the default.
    keys: tuple[str, ...]
    #: Parameters that must be present (``[params]`` or per-row columns).
    required_params: tuple[str, ...] = ()
    #: Parameters that may be present.
    optional_params: tuple[str, ...] = ()
    #: Whether the items come from the account itself rather than an input file.
    reads_account: bool = False


_USER_KEYS = ("email", "user_id")
_ACCOUNT_KEYS = ("account_id",)

ACTIONS: Mapping[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec("suspend", "BatchSuspendUser", 50, True, True, Target.USER, _USER_KEYS),
        ActionSpec("unsuspend", "BatchUnsuspendUser", 50, True, True, Target.USER, _USER_KEYS),
        ActionSpec(
            "update-license",
            "BatchUpdateUser",
            20,
            True,
            True,
            Target.USER,
            _USER_KEYS,
            required_params=("license",),
        ),
        ActionSpec(
            "update-user",
            "UpdateUser",
            1,
            True,
            True,
            Target.USER,
            _USER_KEYS,
            optional_params=("license",),
        ),
        ActionSpec("invite", "InviteUsers", 50, False, True, Target.USER, ("email",)),
        ActionSpec("logout", "LogoutUser", 1, True, True, Target.USER, _USER_KEYS),
        ActionSpec("reset-pin", "ResetPersonalPIN", 1, False, True, Target.USER, _USER_KEYS),
        ActionSpec("get-user", "GetUser", 1, True, False, Target.USER, _USER_KEYS),
        ActionSpec(
            "export-users",
            "ListUsers",
            200,
            True,
            False,
            Target.USER,
            _USER_KEYS,
            reads_account=True,
        ),
        ActionSpec("create-account", "CreateAccount", 1, False, True, Target.ACCOUNT, ("name",)),
        ActionSpec(
            "update-account",
            "UpdateAccount",
            1,
            True,
            True,
            Target.ACCOUNT,
            _ACCOUNT_KEYS,
            required_params=("name",),
        ),
        ActionSpec("delete-account", "DeleteAccount", 1, True, True, Target.ACCOUNT, _ACCOUNT_KEYS),
        ActionSpec(
            "get-settings", "GetAccountSettings", 1, True, False, Target.ACCOUNT, _ACCOUNT_KEYS
        ),
        ActionSpec(
            "update-settings",
            "UpdateAccountSettings",
            1,
            True,
            True,
            Target.ACCOUNT,
            _ACCOUNT_KEYS,
            optional_params=("disable_remote_control", "enable_dial_out"),
        ),
    )
}


def get_action(name: str) -> ActionSpec:
    """Return the action called *name*, or raise ``KeyError`` naming the known ones."""
    try:
        return ACTIONS[name]
    except KeyError:
        known = ", ".join(sorted(ACTIONS))
        raise KeyError(f"unknown action {name!r}; known actions: {known}") from None

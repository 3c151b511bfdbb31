"""What undoing an action means: what it set, what to capture before it, its reverse.

:func:`reversal` gives the :class:`Reversal` of an action that can be undone (the
members of a user or account it changed, the look-up that records them before the
change, the action that puts them back), :func:`cannot_undo` the reason for one that
cannot. ``bulkchime undo`` and ``bulkchime verify`` and the engine's before-image
capture ask here, so that no other module compares action names.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._accounts import ALREADY_EXISTS

__all__ = [
    "COLUMNS",
    "Capture",
    "Reversal",
    "cannot_undo",
    "image_of",
    "image_value",
    "reversal",
]


class Capture(enum.Enum):
    """The look-up that records a subject as it was before the job changed it."""

    #: Each user's license, type and registration status (ListUsers, as the engine reads it).
    USERS = "users"
    #: The account's name and default license (one GetAccount before the change).
    ACCOUNT = "account"
    #: The account's settings (one GetAccountSettings before the change).
    SETTINGS = "settings"


#: The model members a before-image keeps, per capture.
IMAGE_MEMBERS: Mapping[Capture, tuple[str, ...]] = {
    Capture.USERS: ("LicenseType", "UserType", "UserRegistrationStatus"),
    Capture.ACCOUNT: ("Name", "DefaultLicense"),
    Capture.SETTINGS: ("DisableRemoteControl", "EnableDialOut"),
}

#: The input column (an item's field) that sets each member in the reverse job.
COLUMNS: Mapping[str, str] = {
    "LicenseType": "license",
    "UserType": "user_type",
    "Name": "name",
    "DefaultLicense": "default_license",
    "DisableRemoteControl": "disable_remote_control",
    "EnableDialOut": "enable_dial_out",
}


def image_value(value: Any) -> str:
    """A member's value as images and comparisons spell it (booleans in JSON spelling)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def image_of(capture: Capture, record: Mapping[str, Any]) -> dict[str, str]:
    """The members of *record* (a ``User``, ``Account`` or ``AccountSettings``) that a
    before-image of *capture* keeps."""
    return {m: image_value(record[m]) for m in IMAGE_MEMBERS[capture] if record.get(m) is not None}


@dataclass(frozen=True, slots=True)
class Reversal:
    """How one action is undone."""

    #: The action that puts the before-image back.
    action: str
    #: What to record before the change; ``None``: nothing (the item's result suffices).
    capture: Capture | None
    #: The members the action sets, each with the parameter that gives its value, or a
    #: constant (``=Suspended``).
    sets: Mapping[str, str]
    #: Undo only while the account holds no users (a created account is deleted).
    only_if_empty: bool = False

    def not_this_jobs(self, message: str | None) -> bool:
        """Whether a succeeded item's *message* says the job found it done, not did it
        (an account that existed before ``create-account``)."""
        return self.only_if_empty and message == ALREADY_EXISTS

    def after_state(
        self, result: Mapping[str, Any] | None, params: Mapping[str, Any]
    ) -> dict[str, str]:
        """What the job set on one item: from its result where the action reports it,
        else from the job's parameters (members the job did not set are left out)."""
        state: dict[str, str] = {}
        for member, source in self.sets.items():
            if source.startswith("="):
                state[member] = source[1:]
            elif result and result.get(member) is not None:
                state[member] = image_value(result[member])
            elif params.get(source) is not None:
                state[member] = image_value(params[source])
        return state


_REVERSALS: Mapping[str, Reversal] = {
    "update-license": Reversal("update-license", Capture.USERS, {"LicenseType": "license"}),
    "suspend": Reversal("unsuspend", Capture.USERS, {"UserRegistrationStatus": "=Suspended"}),
    "unsuspend": Reversal("suspend", Capture.USERS, {"UserRegistrationStatus": "=Registered"}),
    "update-user": Reversal(
        "update-user", Capture.USERS, {"LicenseType": "license", "UserType": "user_type"}
    ),
    "update-account": Reversal(
        "update-account",
        Capture.ACCOUNT,
        {"Name": "name", "DefaultLicense": "default_license"},
    ),
    "update-settings": Reversal(
        "update-settings",
        Capture.SETTINGS,
        {"DisableRemoteControl": "disable_remote_control", "EnableDialOut": "enable_dial_out"},
    ),
    "create-account": Reversal("delete-account", None, {}, only_if_empty=True),
}

_CANNOT: Mapping[str, str] = {
    "logout": "logout signed users out, and a sign-in cannot be given back",
    "reset-pin": "reset-pin issued new PINs, and the old ones are gone",
    "invite": "invite sent emails, which cannot be unsent",
    "delete-account": "delete-account deleted the account and its users, which cannot be "
    "brought back",
}


def reversal(action: str) -> Reversal | None:
    """How *action* is undone, or ``None`` when it cannot be (see :func:`cannot_undo`)."""
    return _REVERSALS.get(action)


def cannot_undo(action: str, report: str | None = None) -> str:
    """Why *action* cannot be undone (for an invite: where the job's *report* of who was
    invited is)."""
    reason = _CANNOT.get(action, f"{action} only reads, and changed nothing to undo")
    if action == "invite" and report:
        reason += f"; who was invited is in the job's report: {report}"
    return reason

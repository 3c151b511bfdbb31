"""The records the emulator stores: accounts, users and account settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

__all__ = [
    "ACCOUNT_TYPES",
    "LICENSES",
    "Account",
    "AccountSettings",
    "AlexaForBusiness",
    "User",
]

#: The model's ``License`` enum.
LICENSES: Final[tuple[str, ...]] = ("Basic", "Plus", "Pro", "ProTrial")
#: The model's ``AccountType`` enum.
ACCOUNT_TYPES: Final[tuple[str, ...]] = (
    "Team",
    "EnterpriseDirectory",
    "EnterpriseLWA",
    "EnterpriseOIDC",
)


@dataclass(slots=True)
class Account:
    """An Amazon Chime account, as ``GetAccount`` describes it."""

    account_id: str
    aws_account_id: str
    name: str
    #: ``EnterpriseLWA`` for seeded accounts, ``Team`` for those made by CreateAccount.
    account_type: str
    created_timestamp: datetime
    default_license: str
    supported_licenses: tuple[str, ...]
    #: ``Active`` or ``Suspended`` (the current model's ``AccountStatus``); no served
    #: operation suspends an account.
    account_status: str = "Active"
    #: Names of the Active Directory groups whose members may act as delegates.
    signin_delegate_groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AlexaForBusiness:
    """A user's ``AlexaForBusinessMetadata``; a member None was never set."""

    enabled: bool | None = None
    #: The room's ARN; sensitive, never echoed in messages.
    room_arn: str | None = None


@dataclass(slots=True)
class User:
    """A user of one account, as ``GetUser`` describes it."""

    user_id: str
    account_id: str
    primary_email: str
    display_name: str
    license_type: str
    #: ``Registered``, ``Unregistered`` or ``Suspended``.
    registration_status: str
    #: ``Accepted``, ``Pending`` or ``Failed``; None when the user was never invited.
    invitation_status: str | None
    registered_on: datetime | None
    invited_on: datetime | None
    #: Set by ResetPersonalPIN; None until then.
    personal_pin: str | None = None
    #: ``PrivateUser`` or ``SharedDevice`` (the current model's ``UserType``).
    user_type: str = "PrivateUser"
    #: The phone number associated with the user; no served operation sets one.
    primary_provisioned_number: str | None = None
    #: Set by UpdateUser / BatchUpdateUser; None until then.
    alexa_for_business: AlexaForBusiness | None = None


@dataclass(slots=True)
class AccountSettings:
    """An account's settings, as ``GetAccountSettings`` describes them."""

    disable_remote_control: bool = False
    enable_dial_out: bool = True

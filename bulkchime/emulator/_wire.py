"""Records as the service writes them in response bodies, and opaque page tokens."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from ._errors import bad_request
from ._ids import iso8601
from ._records import Account, AccountSettings, User

__all__ = ["account_json", "decode_token", "encode_token", "settings_json", "user_json"]


def account_json(account: Account) -> dict[str, Any]:
    """An ``Account`` shape."""
    return {
        "AwsAccountId": account.aws_account_id,
        "AccountId": account.account_id,
        "Name": account.name,
        "AccountType": account.account_type,
        "CreatedTimestamp": iso8601(account.created_timestamp),
        "DefaultLicense": account.default_license,
        "SupportedLicenses": list(account.supported_licenses),
        "AccountStatus": account.account_status,
        "SigninDelegateGroups": [{"GroupName": g} for g in account.signin_delegate_groups],
    }


def user_json(user: User) -> dict[str, Any]:
    """A ``User`` shape; ``PersonalPIN`` only once one was set, the phone number and
    ``AlexaForBusinessMetadata`` only when the user has them."""
    document: dict[str, Any] = {
        "UserId": user.user_id,
        "AccountId": user.account_id,
        "PrimaryEmail": user.primary_email,
        "LicenseType": user.license_type,
        "UserType": user.user_type,
        "UserRegistrationStatus": user.registration_status,
    }
    if user.primary_provisioned_number is not None:
        document["PrimaryProvisionedNumber"] = user.primary_provisioned_number
    if user.display_name:  # invited users have none until they register
        document["DisplayName"] = user.display_name
    if user.invitation_status is not None:
        document["UserInvitationStatus"] = user.invitation_status
    if user.registered_on is not None:
        document["RegisteredOn"] = iso8601(user.registered_on)
    if user.invited_on is not None:
        document["InvitedOn"] = iso8601(user.invited_on)
    if user.personal_pin is not None:
        document["PersonalPIN"] = user.personal_pin
    alexa = user.alexa_for_business
    if alexa is not None:
        metadata: dict[str, Any] = {}
        if alexa.enabled is not None:
            metadata["IsAlexaForBusinessEnabled"] = alexa.enabled
        if alexa.room_arn is not None:
            metadata["AlexaForBusinessRoomArn"] = alexa.room_arn
        document["AlexaForBusinessMetadata"] = metadata
    return document


def settings_json(settings: AccountSettings) -> dict[str, Any]:
    """An ``AccountSettings`` shape."""
    return {
        "DisableRemoteControl": settings.disable_remote_control,
        "EnableDialOut": settings.enable_dial_out,
    }


def encode_token(scope: str, position: int) -> str:
    """An opaque ``NextToken`` for a page starting at ``position`` of a listing."""
    raw = json.dumps([scope, position], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, scope: str, end: int) -> int:
    """The position a ``NextToken`` stands for; 400 BadRequest unless it was made for
    this listing (``scope``) and points inside it."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        found_scope, position = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise bad_request("Invalid NextToken: it was not made by this listing.") from None
    if (
        found_scope != scope
        or not isinstance(position, int)
        or isinstance(position, bool)
        or not 0 <= position <= end
    ):
        raise bad_request("Invalid NextToken: it was not made by this listing.")
    return position

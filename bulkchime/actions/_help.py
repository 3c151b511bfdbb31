"""What each action does, in an administrator's words, for its command's ``--help``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["HELP", "ActionHelp"]


@dataclass(frozen=True, slots=True)
class ActionHelp:
    """The words of one action's ``--help``."""

    #: One line for the list of commands.
    short: str
    #: What it does and what to know before running it.
    what: str
    #: A command line that runs it.
    example: str
    #: What ``--where`` selects, where that needs saying.
    where: str | None = None


#: Every action's help, by action name.
HELP: Mapping[str, ActionHelp] = {
    "suspend": ActionHelp(
        "Suspend users (they can no longer sign in).",
        "Suspend users: they can no longer sign in, and their licenses and data stay; "
        "unsuspend brings them back. In a Team account, suspending removes the user from "
        "the account (invite them again to undo it).",
        'bulkchime suspend --account-name "Example Corp" --input leavers.csv',
    ),
    "unsuspend": ActionHelp(
        "Unsuspend users, so they can sign in again.",
        "Unsuspend users suspended earlier, so that they can sign in again. Users who are "
        "not suspended are left as they are.",
        'bulkchime unsuspend --account-name "Example Corp" --input returners.csv',
    ),
    "update-license": ActionHelp(
        "Change users' license (--license).",
        "Change users' license to --license, or to each row's own license column.",
        'bulkchime update-license --account-name "Example Corp" --input users.csv --license Pro',
    ),
    "update-user": ActionHelp(
        "Change users' license or user type, one by one.",
        "Change users' license (--license) or user type (--user-type), or set each from "
        "the row's license and user_type columns.",
        'bulkchime update-user --account-name "Example Corp" --input rooms.csv '
        "--user-type SharedDevice",
    ),
    "invite": ActionHelp(
        "Invite people by email into a Team account.",
        "Invite people into a Team account: each gets an email to join (create the account "
        "with create-account). An invite is not idempotent, since each one sends an email: "
        "after an interruption, emails whose invite may have gone out are checked with "
        "ListUsers and not invited twice.",
        'bulkchime invite --account-name "Onboarding Team" --input new-joiners.csv',
        where="--where selects people who already have a user in the account and invites "
        "them again (--where invitation_status Pending sends their invitations again); "
        "new people come from --input.",
    ),
    "logout": ActionHelp(
        "Sign users out of every session.",
        "Sign users out of every Chime client and session, one request per user.",
        'bulkchime logout --account-name "Example Corp" --input leavers.csv',
    ),
    "reset-pin": ActionHelp(
        "Give users a new personal meeting PIN.",
        "Give users a new personal meeting PIN. Not idempotent: each reset makes another "
        "PIN, so a reset whose answer was lost is not sent again.",
        'bulkchime reset-pin --account-name "Example Corp" --input users.csv',
    ),
    "get-user": ActionHelp(
        "Read users' details into the report.",
        "Read users' details (license, registration and invitation status) into the "
        "report; changes nothing.",
        'bulkchime get-user --account-name "Example Corp" --input users.csv --report details.csv',
    ),
    "export-users": ActionHelp(
        "Export an account's users into the report.",
        "Export the users of an account into the report (a .csv report has a row per user "
        "with license and status); changes nothing.",
        'bulkchime export-users --account-name "Example Corp" --report users.csv',
        where="--where exports only the users that match.",
    ),
    "create-account": ActionHelp(
        "Create Team accounts, one per name.",
        "Create Team accounts, one per row of the input's name column. A name that an "
        "account already has is not created again.",
        "bulkchime create-account --input team-account.csv",
    ),
    "update-account": ActionHelp(
        "Rename accounts or change their default license.",
        "Rename accounts (--name) or change their default license (--default-license).",
        'bulkchime update-account --account ACCOUNT_ID --name "Example Corp EMEA"',
    ),
    "delete-account": ActionHelp(
        "Delete accounts.",
        "Delete accounts. A Team account must have no users left. An account that is gone "
        "when a delete whose answer was lost is sent again counts as deleted.",
        "bulkchime delete-account --input old-accounts.csv",
    ),
    "get-settings": ActionHelp(
        "Read accounts' settings into the report.",
        "Read accounts' settings (remote control, dial-out) into the report; changes nothing.",
        "bulkchime get-settings --account ACCOUNT_ID",
    ),
    "update-settings": ActionHelp(
        "Turn remote control or dial-out on or off.",
        "Change accounts' settings: --disable-remote-control / --no-disable-remote-control "
        "and --enable-dial-out / --no-enable-dial-out.",
        "bulkchime update-settings --input accounts.csv --no-enable-dial-out",
    ),
}

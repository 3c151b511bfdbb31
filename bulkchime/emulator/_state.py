"""The in-memory store of accounts, their users and settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from ._records import Account, AccountSettings, User

__all__ = ["EmulatorState", "email_key"]

_T = TypeVar("_T")


def email_key(email: str) -> str:
    """The case-insensitive form of an email address, used for look-ups and counting."""
    # Seeded addresses are lower case already: keep one string object, not two.
    return email if email.islower() else email.lower()


class _Ordered(Generic[_T]):
    """Items in insertion order: found by key in O(1), paged by position in O(page).

    A removed item leaves a hole, so a position handed out in a page token stays
    valid: paging goes on from where it stopped, whatever was removed since.
    """

    __slots__ = ("_items", "_positions")

    def __init__(self) -> None:
        self._items: list[_T | None] = []
        self._positions: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._positions)

    def __contains__(self, key: str) -> bool:
        return key in self._positions

    def get(self, key: str) -> _T | None:
        position = self._positions.get(key)
        return None if position is None else self._items[position]

    def add(self, key: str, item: _T) -> None:
        if key in self._positions:
            raise KeyError(f"{key!r} is already stored")
        self._positions[key] = len(self._items)
        self._items.append(item)

    def extend(self, keys: list[str], items: list[_T]) -> None:
        """Append many items at C speed; every key must be new (checked by count)."""
        start, before = len(self._items), len(self._positions)
        self._positions.update(zip(keys, range(start, start + len(keys)), strict=True))
        if len(self._positions) != before + len(keys):
            raise KeyError("some keys were already stored or repeated")
        self._items.extend(items)

    def remove(self, key: str) -> _T | None:
        position = self._positions.pop(key, None)
        if position is None:
            return None
        item, self._items[position] = self._items[position], None
        return item

    def values(self) -> Iterator[_T]:
        return (item for item in self._items if item is not None)

    @property
    def end(self) -> int:
        """One past the last position ever used."""
        return len(self._items)

    def page(
        self, start: int, limit: int, keep: Callable[[_T], bool] | None = None
    ) -> tuple[list[_T], int | None]:
        """Up to ``limit`` kept items from ``start``, and where the next page starts (or None).

        The next position is that of the next kept item, so the page it starts is empty
        only if items were removed in between.
        """
        items, end = self._items, len(self._items)
        found: list[_T] = []
        position = start
        while position < end:
            item = items[position]
            if item is not None and (keep is None or keep(item)):
                if len(found) == limit:
                    return found, position
                found.append(item)
            position += 1
        return found, None


class _Members:
    """The users of one account, by id and by email, plus those dissociated from it."""

    __slots__ = ("_by_email", "dissociated", "users")

    def __init__(self) -> None:
        self.users: _Ordered[User] = _Ordered()
        # email_key(email) -> user id of current members; built on first use, since
        # seeding a million users is a second faster without it and most runs use ids.
        self._by_email: dict[str, str] | None = None
        #: email_key(email) -> user, for Team users suspended (dissociated) from the account.
        self.dissociated: dict[str, User] = {}

    def by_email(self) -> dict[str, str]:
        """email_key(email) -> user id of every current member."""
        if self._by_email is None:
            self._by_email = {
                email_key(user.primary_email): user.user_id for user in self.users.values()
            }
        return self._by_email

    def add(self, user_ids: list[str], email_keys: list[str], users: list[User]) -> None:
        if self._by_email is not None:
            known = len(self._by_email)
            self._by_email.update(zip(email_keys, user_ids, strict=True))
            if len(self._by_email) != known + len(users):
                raise KeyError("some of these emails are members already")
        self.users.extend(user_ids, users)
        if self.dissociated:
            for key in email_keys:
                self.dissociated.pop(key, None)

    def remove(self, user_id: str) -> User | None:
        user = self.users.remove(user_id)
        if user is not None:
            key = email_key(user.primary_email)
            if self._by_email is not None:
                self._by_email.pop(key, None)
            self.dissociated[key] = user
        return user


class EmulatorState:
    """Every account, user and setting the emulator holds, with typed read access.

    Reads are what tests use to check what a run did (``state.users(account_id)``);
    writes are made by the operations and by seeding.
    """

    def __init__(self, aws_account_id: str = "123456789012") -> None:
        #: The AWS account that owns every Chime account here (CreateAccount uses it).
        self.aws_account_id = aws_account_id
        self._accounts: _Ordered[Account] = _Ordered()
        self._members: dict[str, _Members] = {}
        self._settings: dict[str, AccountSettings] = {}

    def __repr__(self) -> str:
        users = sum(len(m.users) for m in self._members.values())
        return f"<EmulatorState accounts={len(self._accounts)} users={users}>"

    # ---- reads

    def account_ids(self) -> list[str]:
        """Ids of the existing accounts, in creation (seed) order."""
        return [account.account_id for account in self._accounts.values()]

    def accounts(self) -> list[Account]:
        """The existing accounts, in creation (seed) order."""
        return list(self._accounts.values())

    def get_account(self, account_id: str) -> Account | None:
        """The account with this id, or None (also once it is deleted)."""
        return self._accounts.get(account_id)

    def find_accounts_by_name(self, name: str) -> list[Account]:
        """Accounts named exactly ``name`` (several: names need not be unique)."""
        return [account for account in self._accounts.values() if account.name == name]

    def users(self, account_id: str) -> list[User]:
        """The account's current members in insertion order; [] for an unknown account."""
        members = self._members.get(account_id)
        return [] if members is None else list(members.users.values())

    def user_count(self, account_id: str) -> int:
        """How many members the account has now; 0 for an unknown account."""
        members = self._members.get(account_id)
        return 0 if members is None else len(members.users)

    def get_user(self, account_id: str, user_id: str) -> User | None:
        """The member with this id, or None."""
        members = self._members.get(account_id)
        return None if members is None else members.users.get(user_id)

    def find_user_by_email(self, account_id: str, email: str) -> User | None:
        """The member with this email address (case-insensitive), or None."""
        members = self._members.get(account_id)
        if members is None:
            return None
        user_id = members.by_email().get(email_key(email))
        return None if user_id is None else members.users.get(user_id)

    def settings(self, account_id: str) -> AccountSettings | None:
        """The account's settings, or None for an unknown account."""
        return self._settings.get(account_id)

    # ---- writes

    def add_account(self, account: Account, settings: AccountSettings | None = None) -> None:
        """Store a new account (its id must be new)."""
        self._accounts.add(account.account_id, account)
        self._members[account.account_id] = _Members()
        self._settings[account.account_id] = settings or AccountSettings()

    def remove_account(self, account_id: str) -> Account | None:
        """Delete an account with its users and settings; returns it, or None if unknown."""
        self._members.pop(account_id, None)
        self._settings.pop(account_id, None)
        return self._accounts.remove(account_id)

    def add_users(self, account_id: str, users: list[User]) -> None:
        """Make users members of an account; their ids and emails must be new to it."""
        members = self._members[account_id]
        members.by_email()  # built now, so that a repeated email is refused
        members.add(
            [user.user_id for user in users],
            [email_key(user.primary_email) for user in users],
            users,
        )

    def add_members(
        self, account_id: str, user_ids: list[str], email_keys: list[str], users: list[User]
    ) -> None:
        """:meth:`add_users` for seeding: ids and ``email_key`` of each user given, and
        emails not checked for repeats unless the email index exists already."""
        self._members[account_id].add(user_ids, email_keys, users)

    def dissociate_user(self, account_id: str, user_id: str) -> User | None:
        """Remove a member from the account, remembered by email for a later re-invite."""
        return self._members[account_id].remove(user_id)

    def dissociated_user(self, account_id: str, email: str) -> User | None:
        """A user once dissociated from the account, by email, or None."""
        members = self._members.get(account_id)
        return None if members is None else members.dissociated.get(email_key(email))

    def page_users(
        self, account_id: str, start: int, limit: int, keep: Callable[[User], bool] | None = None
    ) -> tuple[list[User], int | None]:
        """One page of members (those ``keep`` keeps) from position ``start``, and the next
        page's position."""
        return self._members[account_id].users.page(start, limit, keep)

    def page_accounts(
        self, start: int, limit: int, keep: Callable[[Account], bool] | None = None
    ) -> tuple[list[Account], int | None]:
        """One page of accounts from position ``start``, and the next page's position."""
        return self._accounts.page(start, limit, keep)

    def user_positions_end(self, account_id: str) -> int:
        """One past the last member position of the account (to check page tokens)."""
        return self._members[account_id].users.end

    def account_positions_end(self) -> int:
        """One past the last account position (to check page tokens)."""
        return self._accounts.end

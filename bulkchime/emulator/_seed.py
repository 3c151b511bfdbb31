"""Seeding: deterministic EnterpriseLWA accounts full of realistic users.

The same seed and sizes give the same accounts, ids, names and users. Speed matters
(a million users in seconds), so users are generated an attribute at a time from a few
large blocks of random bytes, and display names and timestamps come from shared pools
instead of new objects.
"""

from __future__ import annotations

import gc
import random
from datetime import UTC, datetime, timedelta
from itertools import repeat
from typing import Final

from ._records import LICENSES, Account, User
from ._state import EmulatorState

__all__ = [
    "SEEDED_ACCOUNT_TYPE",
    "random_uuids",
    "seed_state",
    "seeded_account_name",
    "seeded_email",
]

SEEDED_ACCOUNT_TYPE: Final = "EnterpriseLWA"
_EPOCH: Final = datetime(2019, 1, 7, 9, 0, tzinfo=UTC)

_FIRST_NAMES: Final = (
    "Ada", "Alan", "Amara", "Ana", "Arjun", "Ben", "Carla", "Chen", "Dana", "David", "Elena",
    "Emma", "Farah", "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jamal", "Jana", "Jonas",
    "Kai", "Kenji", "Laila", "Lars", "Lena", "Liam", "Lucia", "Maya", "Mei", "Mohamed", "Nadia",
    "Noah", "Nora", "Omar", "Oscar", "Priya", "Quinn", "Rafael", "Rosa", "Sam", "Sara", "Sofia",
    "Tariq", "Theo", "Uma", "Victor", "Wei", "Yara", "Yusuf", "Zoe", "Aiko", "Bruno", "Chloe",
    "Diego", "Eva", "Goran", "Helga", "Ibrahim", "Julia", "Kofi", "Leo", "Marta",
)  # fmt: skip
_LAST_NAMES: Final = (
    "Adams", "Ahmed", "Alvarez", "Andersen", "Bauer", "Becker", "Brown", "Chen", "Costa", "Das",
    "Dubois", "Eriksson", "Fischer", "Garcia", "Gupta", "Hansen", "Hoffmann", "Ito", "Jensen",
    "Johnson", "Kim", "Kowalski", "Kumar", "Larsen", "Lee", "Lopez", "Martin", "Meyer", "Moreau",
    "Muller", "Nakamura", "Nguyen", "Novak", "Okafor", "Olsen", "Patel", "Perez", "Petrov", "Rossi",
    "Santos", "Sato", "Schmidt", "Silva", "Singh", "Smith", "Suzuki", "Tanaka", "Taylor", "Wagner",
    "Walker", "Wang", "Weber", "Williams", "Wilson", "Wong", "Yamamoto", "Yilmaz", "Zhang", "Zhou",
    "Horvat", "Kovacs", "Popescu", "Reyes", "Ueda",
)  # fmt: skip
_NAMES: Final = tuple(f"{first} {last}" for first in _FIRST_NAMES for last in _LAST_NAMES)

#: Moments users were invited (the first 4096) or registered (up to 31 steps later):
#: every ~6.5 hours over about three years.
_MOMENTS: Final = tuple(_EPOCH + timedelta(minutes=391 * k) for k in range(4096 + 32))


def _table(weights: dict[str, int]) -> tuple[str, ...]:
    """256 entries, each value repeated by its weight: indexed by one random byte."""
    table = tuple(value for value, weight in weights.items() for _ in range(weight))
    assert len(table) == 256, weights
    return table


_LICENSE_TABLE: Final = _table({"Pro": 115, "Basic": 90, "Plus": 31, "ProTrial": 20})
_STATUS_TABLE: Final = _table({"Registered": 215, "Unregistered": 31, "Suspended": 10})
#: A user whose invitation byte is below this (one in 16) is a shared device (a meeting
#: room): the byte's low four bits pick the invitation moment and its high four bits are
#: otherwise unused, so no other attribute depends on the user type.
_SHARED_DEVICE_BELOW: Final = 16


def seeded_account_name(number: int) -> str:
    """The name of the seeded account ``number`` (1-based): ``Example Corp 1``."""
    return f"Example Corp {number}"


def seeded_email(account_number: int, user_number: int) -> str:
    """The email of seeded user ``user_number`` of account ``account_number`` (both 1-based)."""
    return f"user{user_number}@corp{account_number}.example.com"


_VERSION: Final = bytes((byte & 0x0F) | 0x40 for byte in range(256))
_VARIANT: Final = bytes((byte & 0x3F) | 0x80 for byte in range(256))
_UUID_DASHES: Final = (8, 13, 18, 23)


def random_uuids(rng: random.Random, count: int) -> list[str]:
    """``count`` version-4 UUID strings, built column by column at C speed.

    Same result as ``uuid.UUID(bytes=rng.randbytes(16), version=4)`` ``count`` times,
    about ten times faster: a million ids take a fraction of a second.
    """
    raw = bytearray(rng.randbytes(16 * count))
    raw[6::16] = raw[6::16].translate(_VERSION)
    raw[8::16] = raw[8::16].translate(_VARIANT)
    hexed = raw.hex().encode("ascii")
    # 36 characters and a newline per id: dashes stay, hex digits are copied in by column.
    text = bytearray(b"-" * (37 * count))
    column = 0
    for digit in range(32):
        if column in _UUID_DASHES:
            column += 1
        text[column::37] = hexed[digit::32]
        column += 1
    text[36::37] = b"\n" * count
    return text.decode("ascii").split("\n")[:count]


def _add_users(
    state: EmulatorState, rng: random.Random, account_id: str, account_number: int, count: int
) -> None:
    """Add the account's users, generated a column (one attribute of every user) at a time."""
    ids = random_uuids(rng, count)
    domain = seeded_email(account_number, 0).partition("@")[2]
    emails = [f"user{number}@{domain}" for number in range(1, count + 1)]
    noise = rng.randbytes(7 * count)
    licenses = [_LICENSE_TABLE[byte] for byte in noise[0::7]]
    statuses = [_STATUS_TABLE[byte] for byte in noise[1::7]]
    names = [_NAMES[(a & 63) << 6 | b & 63] for a, b in zip(noise[2::7], noise[3::7], strict=True)]
    invited = [(a & 15) << 8 | b for a, b in zip(noise[4::7], noise[5::7], strict=True)]
    invited_on = [_MOMENTS[index] for index in invited]
    registered_on = [
        None if status == "Unregistered" else _MOMENTS[index + (delta & 31)]
        for status, index, delta in zip(statuses, invited, noise[6::7], strict=True)
    ]
    invitations = ["Pending" if status == "Unregistered" else "Accepted" for status in statuses]
    users = list(
        map(
            User,
            ids,
            repeat(account_id),
            emails,
            names,
            licenses,
            statuses,
            invitations,
            registered_on,
            invited_on,
        )
    )
    # Users are PrivateUser by default; setting the few others is faster than passing all.
    for index, byte in enumerate(noise[4::7]):
        if byte < _SHARED_DEVICE_BELOW:
            users[index].user_type = "SharedDevice"
    # Seeded emails are lower case already: they are their own look-up keys.
    state.add_members(account_id, ids, emails, users)


def seed_state(state: EmulatorState, *, accounts: int, users_per_account: int, seed: int) -> None:
    """Add ``accounts`` EnterpriseLWA accounts of ``users_per_account`` users each."""
    rng = random.Random(seed)
    aws_account_id = f"{rng.randrange(10**11, 10**12)}"
    state.aws_account_id = aws_account_id
    # Every account id first, so that an account's id does not depend on the sizes.
    account_ids = random_uuids(rng, accounts)
    collecting = gc.isenabled()
    # A million new objects would set off many full collections, each slower than the last.
    gc.disable()
    try:
        for number, account_id in enumerate(account_ids, start=1):
            created = _EPOCH - timedelta(days=30 * (accounts - number + 1))
            account = Account(
                account_id,
                aws_account_id,
                seeded_account_name(number),
                SEEDED_ACCOUNT_TYPE,
                created,
                "Pro",
                LICENSES,
            )
            state.add_account(account)
            _add_users(state, rng, account_id, number, users_per_account)
    finally:
        if collecting:
            gc.enable()

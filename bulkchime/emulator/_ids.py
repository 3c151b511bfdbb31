"""Deterministic identifiers: UUID-shaped ids, PINs and timestamps from a seeded random."""

from __future__ import annotations

import functools
import random
from datetime import UTC, datetime

__all__ = ["IdSource", "iso8601", "uuid_from_bits"]

_VERSION_MASK = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_BITS = (4 << 76) | (0x8000 << 48)


def uuid_from_bits(bits: int) -> str:
    """A version-4 UUID string from 128 random bits (as ``uuid.UUID(int=…, version=4)``)."""
    text = "%032x" % ((bits & _VERSION_MASK) | _VERSION_BITS)
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@functools.lru_cache(maxsize=16384)
def iso8601(moment: datetime) -> str:
    """A UTC timestamp as the service writes it: ``2024-05-01T12:00:00.000Z``.

    Cached: seeded users share a pool of a few thousand moments, and a page of 200
    users would otherwise spend most of its time in ``strftime``.
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class IdSource:
    """Ids made while serving (new accounts, invited users, invites, PINs).

    Seeded, so that the same seed and the same requests give the same ids; never
    ``uuid4`` or the global random.
    """

    def __init__(self, seed: int) -> None:
        self._random = random.Random(f"bulkchime-emulator-ids-{seed}")
        self._requests = 0

    def uuid(self) -> str:
        """A new UUID-shaped id."""
        return uuid_from_bits(self._random.getrandbits(128))

    def personal_pin(self) -> str:
        """A new ten-digit personal meeting PIN."""
        return f"{self._random.randrange(10**10):010d}"

    def request_id(self) -> str:
        """The next ``x-amzn-RequestId`` (a counter, so it never disturbs the other ids)."""
        self._requests += 1
        return uuid_from_bits(self._requests)

"""Fault injection: a server-side token bucket, random 5xx, per-user throttles, latency.

Every random draw comes from one generator seeded from the configuration's seed
(apart from the one that seeds data), so a run with the same seed and the same
requests meets the same faults.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable, Mapping

from ._config import LIVE_SETTINGS, EmulatorConfig, SettingValue, checked_changes
from ._errors import ChimeError
from ._stats import Stats

__all__ = ["FaultInjector", "TokenBucket"]


class TokenBucket:
    """A token bucket refilled at ``rate`` tokens per second up to ``capacity``."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._level: float | None = None  # None: full
        self._stamp = 0.0

    def __repr__(self) -> str:
        return f"<TokenBucket level={self._level}>"

    def take(self, rate: float, capacity: int) -> float:
        """Take a token: 0.0 when there was one, else the seconds until there will be."""
        now = self._clock()
        level = capacity if self._level is None else self._level
        level = min(float(capacity), level + (now - self._stamp) * rate)
        self._stamp = now
        if level >= 1.0:
            self._level = level - 1.0
            return 0.0
        self._level = level
        return (1.0 - level) / rate

    def refill(self) -> None:
        """Fill the bucket (after its rate or size changed)."""
        self._level = None


class FaultInjector:
    """Decides, request by request, which faults the emulator answers with."""

    def __init__(self, config: EmulatorConfig, stats: Stats) -> None:
        #: The live configuration; :meth:`configure` changes it.
        self.config = config
        self._stats = stats
        self._random = random.Random(f"bulkchime-emulator-faults-{config.seed}")
        self._bucket = TokenBucket(lambda: asyncio.get_running_loop().time())

    def __repr__(self) -> str:
        return f"<FaultInjector {self.settings()}>"

    def settings(self) -> dict[str, SettingValue]:
        """The live settings, as ``POST /_emulator/config`` answers them.

        Session tokens are credentials: each is shown as ``***``, never echoed.
        """
        settings: dict[str, SettingValue] = {
            name: getattr(self.config, name) for name in LIVE_SETTINGS
        }
        settings["session_tokens"] = ("***",) * len(self.config.session_tokens)
        return settings

    def configure(self, changes: Mapping[str, object]) -> dict[str, SettingValue]:
        """Change live settings (all or none); raises ValueError for a bad one."""
        checked = checked_changes(changes)
        for name, value in checked.items():
            setattr(self.config, name, value)
        if "rate" in checked or "burst" in checked:
            self._bucket.refill()
        return self.settings()

    def admit(self) -> None:
        """Take a token from the bucket, or raise 429 ThrottledClientException."""
        rate = self.config.rate
        if rate <= 0:
            return
        capacity = self.config.burst or max(1, math.ceil(rate))
        wait = self._bucket.take(rate, capacity)
        if wait > 0:
            self._stats.throttled += 1
            headers = {"Retry-After": str(math.ceil(wait))} if wait >= 1 else {}
            raise ChimeError("ThrottledClientException", "Rate exceeded", headers=headers)

    def inject_fault(self) -> None:
        """At ``error_rate``, raise 500 ServiceFailure or 503 ServiceUnavailable."""
        if self.config.error_rate <= 0 or self._random.random() >= self.config.error_rate:
            return
        self._stats.faults += 1
        if self._random.random() < 0.5:
            raise ChimeError("ServiceFailureException", "Injected fault: service failure")
        raise ChimeError("ServiceUnavailableException", "Injected fault: service unavailable")

    async def delay(self) -> None:
        """Wait ``latency_ms``."""
        if self.config.latency_ms > 0:
            await asyncio.sleep(self.config.latency_ms / 1000)

    def user_throttled(self) -> bool:
        """Whether to answer one batch item with a per-user ``Throttled`` error."""
        rate = self.config.user_error_rate
        if rate <= 0 or self._random.random() >= rate:
            return False
        self._stats.user_throttled += 1
        return True

"""Test hook: ``BULKCHIME_CRASHPOINT=after_intent=3`` SIGKILLs the process there.

The crash-safety tests use it to die at exact instants (after the intent is
committed but before the request is sent, after the response but before the
outcome is committed); unset, it costs one dictionary look-up per batch.
"""

from __future__ import annotations

import os
import signal

__all__ = ["crash_points"]


class _CrashPoints:
    def __init__(self, spec: str | None) -> None:
        self._left: dict[str, int] = {}
        for part in (spec or "").split(","):
            name, _, count = part.partition("=")
            if name.strip():
                self._left[name.strip()] = int(count or 1)

    def reached(self, name: str) -> None:
        left = self._left.get(name)
        if left is None:
            return
        left -= 1
        self._left[name] = left
        if left <= 0:
            os.kill(os.getpid(), signal.SIGKILL)


crash_points = _CrashPoints(os.environ.get("BULKCHIME_CRASHPOINT"))

"""The lock file beside a checkpoint: ``<checkpoint>.lock``, ``flock``-ed by the run that
owns the checkpoint and holding its pid.

A lock left by a killed process is released by the kernel with the process, so it
never goes stale and nobody has to clean it up. The pid is only for messages and
``bulkchime status``: the ``flock`` is what counts.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..errors import CheckpointInUse

__all__ = ["LockFile", "lock_holder", "lock_path"]


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The lock file of the checkpoint at *path*."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


def lock_holder(path: str | os.PathLike[str]) -> int | None:
    """The pid of the live process holding the lock of the checkpoint at *path* (``-1``
    if it wrote none yet), or ``None`` when nobody holds it."""
    try:
        fd = os.open(lock_path(path), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int:
    text = os.pread(fd, 64, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else -1


class LockFile:
    """The held lock of one checkpoint; :meth:`release` it when done."""

    def __init__(self, path: Path, fd: int, *, created: bool) -> None:
        #: The lock file.
        self.path = path
        self._fd: int | None = fd
        #: Whether this process created the lock file (and may remove it on a refusal).
        self.created = created

    @classmethod
    def acquire(cls, checkpoint: str | os.PathLike[str], display: str) -> LockFile:
        """Lock *checkpoint* for this process, or raise :class:`CheckpointInUse` naming the
        holder's pid. *display* is how messages name the checkpoint."""
        path = lock_path(checkpoint)
        created = not path.exists()
        # Owner-only like the checkpoint: the pid is nobody else's business either.
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise CheckpointInUse(
                f"checkpoint {display} is in use by pid {holder}; wait for that run to "
                "finish or stop it (SIGINT) before running again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        return cls(path, fd, created=created)

    @property
    def held(self) -> bool:
        """Whether the lock is still held."""
        return self._fd is not None

    def release(self, *, unlink: bool = False) -> None:
        """Release the lock (idempotent); *unlink* removes the lock file first.

        Only for a checkpoint that is itself being removed (discarded) or was never
        one (a refused file). Unlinking before unlocking leaves a window of a few
        microseconds in which a process that has just opened the old file could
        lock it after all; nothing is left for it to resume, so it starts afresh.
        """
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if unlink:
                self.path.unlink(missing_ok=True)
            else:
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

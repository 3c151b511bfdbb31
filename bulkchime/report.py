"""The per-item report (JSONL or CSV) and the run summary, both read from the store."""

from __future__ import annotations

import csv
import errno
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ._text import count
from .errors import DiskFull
from .store import STATUS_ORDER, CheckpointStore

if TYPE_CHECKING:
    from .client import RequestStats

__all__ = ["REPORT_FIELDS", "Summary", "write_report", "write_report_to"]

#: Columns of a CSV report, in order (JSONL records carry the same keys, plus ``result``).
REPORT_FIELDS = (
    "line",
    "key",
    "action",
    "account_id",
    "user_id",
    "email",
    "status",
    "error_code",
    "message",
    "attempts",
)
#: Extra CSV columns filled from a record's ``result`` (exports, look-ups, creations).
_RESULT_COLUMNS = (
    "DisplayName",
    "LicenseType",
    "UserRegistrationStatus",
    "UserInvitationStatus",
    "AccountId",
)


def _open_private(path: Path) -> IO[str]:
    # Reports name users: readable by the owner only, from the first byte.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8", newline="")


async def write_report(
    store: CheckpointStore, path: Path, report_format: str | None = None
) -> Path:
    """Write every task of *store* to *path*: CSV for ``.csv``, else JSONL.

    The report appears whole or not at all (written beside, then renamed), so a run
    killed while writing it never leaves a truncated report that looks complete.
    """
    partial = path.with_name(path.name + ".partial")
    try:
        with _open_private(partial) as out:
            await write_report_to(
                store, out, report_format or ("csv" if path.suffix == ".csv" else "jsonl")
            )
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        partial.unlink(missing_ok=True)
        raise DiskFull(str(path), error.strerror or str(error), report=True) from None
    os.replace(partial, path)
    return path


async def write_report_to(store: CheckpointStore, out: IO[str], report_format: str) -> None:
    """Stream the report of *store* into *out* as ``jsonl`` or ``csv``."""
    if report_format == "csv":
        writer = csv.writer(out)
        writer.writerow(REPORT_FIELDS + tuple(_csv_name(c) for c in _RESULT_COLUMNS))
        async for record in store.report_records():
            row = record.as_dict()
            result = record.result or {}
            writer.writerow(
                [("" if row[name] is None else row[name]) for name in REPORT_FIELDS]
                + [result.get(column, "") for column in _RESULT_COLUMNS]
            )
    elif report_format == "jsonl":
        async for record in store.report_records():
            out.write(json.dumps(record.as_dict(), separators=(",", ":")) + "\n")
    else:
        raise ValueError(f"unknown report format {report_format!r}; use jsonl or csv")


def _csv_name(column: str) -> str:
    out = "".join(f"_{c.lower()}" if c.isupper() else c for c in column).lstrip("_")
    return "result_" + out


@dataclass(slots=True)
class Summary:
    """Counts by status and error code, requests, throttles, time and speed."""

    counts: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    throttled: int = 0
    #: Requests that never reached the service (connection refused or not made in time).
    not_connected: int = 0
    elapsed_seconds: float = 0.0
    #: Items this run finished (succeeded or failed); earlier runs of a resumed job excluded.
    finished_this_run: int = 0
    #: Actions run over each item (the report has a record per item and action).
    phases: int = 1

    @classmethod
    async def from_store(
        cls,
        store: CheckpointStore,
        stats: RequestStats,
        elapsed_seconds: float,
        finished_this_run: int = 0,
    ) -> Summary:
        """The summary of *store* now, with this run's request figures."""
        meta = await store.job_meta() or {}
        return cls(
            counts=await store.counts(),
            errors=await store.error_counts(),
            requests=dict(stats.requests),
            throttled=stats.throttled,
            not_connected=stats.not_connected,
            elapsed_seconds=elapsed_seconds,
            finished_this_run=finished_this_run,
            phases=len(meta.get("actions") or [None]),
        )

    @property
    def total(self) -> int:
        """Records in the report."""
        return sum(self.counts.values())

    @property
    def all_succeeded(self) -> bool:
        """Whether nothing failed, was rejected, or is left to do (duplicates skipped are fine)."""
        return all(
            self.counts.get(status, 0) == 0
            for status in ("failed", "rejected", "pending", "in_flight")
        ) and not any(code == "PreviousPhaseFailed" for code in self.errors)

    @property
    def unfinished(self) -> int:
        """Items left pending or in flight (a resume has work to do)."""
        return self.counts.get("pending", 0) + self.counts.get("in_flight", 0)

    @property
    def items_per_second(self) -> float:
        """Items this run finished, per second of this run."""
        if self.elapsed_seconds <= 0:
            return 0.0
        return self.finished_this_run / self.elapsed_seconds

    def lines(self) -> list[str]:
        """The summary as printed at the end of a run."""
        counts = ", ".join(
            f"{self.counts.get(s, 0)} {s}"
            for s in STATUS_ORDER
            if self.counts.get(s) or s in STATUS_ORDER[:4]
        )
        if self.phases > 1:
            rows = self.total // self.phases
            out = [
                f"records: {self.total} = {count(rows, 'item')} x {self.phases} actions ({counts})"
            ]
        else:
            out = [f"items: {self.total} ({counts})"]
        if self.errors:
            out.append("errors: " + ", ".join(f"{code} {n}" for code, n in self.errors.items()))
        sent = sum(self.requests.values())
        by_op = ", ".join(f"{op} {n}" for op, n in sorted(self.requests.items()))
        requests = f"requests: {sent} sent ({by_op or 'none'}), {self.throttled} throttled (429)"
        if self.not_connected:
            requests += f"; {self.not_connected} not sent (could not connect)"
        out.append(requests)
        out.append(f"elapsed: {self.elapsed_seconds:.1f} s, {self.items_per_second:.1f} items/s")
        return out

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data."""
        return {
            "total": self.total,
            "counts": self.counts,
            "errors": self.errors,
            "requests": self.requests,
            "requests_total": sum(self.requests.values()),
            "throttled": self.throttled,
            "not_connected": self.not_connected,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "items_per_second": round(self.items_per_second, 2),
        }

    def write_json(self, path: Path, **extra: Any) -> None:
        """Write the summary (plus *extra*, e.g. the exit code) for a pipeline to read."""
        data: Mapping[str, Any] = {
            **self.as_dict(),
            **{k: str(v) if isinstance(v, Path) else v for k, v in extra.items()},
        }
        with _open_private(path) as out:
            json.dump(data, out, indent=2)
            out.write("\n")

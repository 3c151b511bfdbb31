"""What every stage of a run shares: the job, its options, its store, budget and client."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..actions import ActionSpec, get_action
from ..constants import COMMAND_LINE
from ..job import JobSpec
from ..progress import ProgressBar
from .lease import Lease

if TYPE_CHECKING:
    from ..budget import RateBudget
    from ..client import Client, RequestStats
    from ..lookups import Lookups
    from ..report import Summary
    from ..store import CheckpointStore
    from .health import Health

__all__ = ["RunContext", "RunOptions", "RunResult", "new_lease"]


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How to run a job (the command line's side of it)."""

    #: The checkpoint file; with :attr:`checkpoint_url`, where its name comes from (the
    #: shared job's default name and the report's default place).
    checkpoint: Path
    #: A shared checkpoint (``postgresql://...?job=NAME``) instead of the file.
    checkpoint_url: str | None = None
    #: A shared rate budget (``redis://HOST:PORT/DB?key=NAME``) instead of the process's own.
    budget_url: str | None = None
    #: Seconds a runner's claims of a shared checkpoint stay its own without a heartbeat.
    lease_seconds: float = 30.0
    report: Path | None = None
    dry_run: bool = False
    force: bool = False
    retry_failed: bool = False
    summary_json: Path | None = None
    #: Input bytes for ``path = "-"`` (defaults to the process's stdin).
    stdin: BinaryIO | None = None
    #: Install SIGINT/SIGTERM handlers (the CLI does; embedded callers may not want it).
    handle_signals: bool = True
    #: Where the plan and summary are printed.
    out: Callable[[str], None] = print
    #: A live progress bar (a terminal); ``None`` logs ``progress`` events instead.
    progress_bar: ProgressBar | None = None


@dataclass(slots=True)
class RunResult:
    """What a run ended with."""

    exit_code: int
    summary: Summary
    report_path: Path | None
    checkpoint_path: Path
    message: str | None = None


@dataclass(slots=True)
class RunContext:
    """One run of one job: what its stages read and share."""

    job: JobSpec
    options: RunOptions
    store: CheckpointStore
    budget: RateBudget
    stats: RequestStats
    health: Health
    client: Client
    lookups: Lookups
    #: This runner's lease on its claims (made from the store if not given).
    given_lease: Lease | None = None
    #: The job's phases, in order.
    actions: list[ActionSpec] = field(default_factory=list)
    #: Account ids found for account names.
    account_ids: dict[str, str] = field(default_factory=dict)
    #: Names of the accounts the service described, by id (for plans and ``status``).
    account_names: dict[str, str] = field(default_factory=dict)
    #: Accounts the service confirmed exist (or that were dealt with).
    checked_accounts: set[str] = field(default_factory=set)
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if not self.actions:
            self.actions = [get_action(name) for name in self.job.actions]
        if self.given_lease is None:
            self.given_lease = new_lease(self.store, self.options, self.health)

    @property
    def lease(self) -> Lease:
        """This runner's lease on its claims (always valid on a store one process holds)."""
        assert self.given_lease is not None
        return self.given_lease

    @property
    def source(self) -> str:
        """How the job is named in messages: its file, or the command line."""
        return self.job.source or COMMAND_LINE

    @property
    def job_account(self) -> str | None:
        """The account the job names, by id or by (resolved) name."""
        if self.job.account_id:
            return self.job.account_id
        if self.job.account_name:
            return self.account_ids.get(self.job.account_name)
        return None

    @property
    def dry_run(self) -> bool:
        """Whether this run only plans."""
        return self.options.dry_run


def new_lease(store: CheckpointStore, options: RunOptions, health: Health) -> Lease:
    """The run's lease on its claims of *store*, publishing what *health* counted."""
    return Lease(store, options.lease_seconds, lambda: health.finished_this_run, health.fail_job)

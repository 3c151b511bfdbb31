"""The job runner: ingest, resolve, send in batches under the limiter, record, report.

One :class:`Engine` runs one job against one checkpoint. Its steps, each resumable:

1. **ingest**: read the whole input into the checkpoint (job-level errors stop
   here, before anything is sent);
2. per action phase: **recover** tasks left ``in_flight`` by a killed run,
   **resolve** emails to user ids (and users to accounts), check each **account**
   exists, then **send** batches with bounded concurrency, retrying what the
   service says is worth retrying;
3. **report**: one record per item and phase, from the checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ParamSpec, TypeVar

import structlog
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
)

from .actions import ActionSpec, Target, get_action
from .checkpoint import Checkpoint, ItemRecord, State, TaskOutcome, WorkItem
from .client import ChimeApi, ItemResult, RequestStats, open_client, public_user
from .constants import DEFAULT_BURST, DEFAULT_RATE, LICENSES
from .errors import (
    ApiError,
    AuthError,
    BadBatchError,
    InputError,
    Interrupted,
    JobAborted,
    JobError,
    PermanentError,
    RetryableError,
)
from .job import JobSpec
from .plan import Batch, PlanLine, batches, halves
from .progress import ProgressBar, ProgressSnapshot
from .report import Summary, write_report
from .schedule import RateLimiter, backoff_seconds, backoff_wait, client_burst
from .sources import SourceRow, file_fingerprint, read_source

__all__ = ["Engine", "RunOptions", "RunResult", "default_report_path", "run_job"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

log = structlog.get_logger("bulkchime")

#: Above this many emails in one account, one paginated scan beats per-email look-ups.
SCAN_THRESHOLD = 100
#: Finished items needed before the failure threshold can abort a job.
FAILURE_THRESHOLD_MIN_ITEMS = 20
#: Seconds in-flight requests get to finish after SIGINT/SIGTERM before they are cut off.
SHUTDOWN_GRACE_SECONDS = 30.0
#: Seconds between progress events.
PROGRESS_INTERVAL = 5.0
#: Items read from the checkpoint per page while sending.
PAGE_SIZE = 1000

_QUERY_FIELDS = {
    "license": "LicenseType",
    "registration_status": "UserRegistrationStatus",
    "invitation_status": "UserInvitationStatus",
}


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How to run a job (the command line's side of it)."""

    checkpoint: Path
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


class _CrashPoints:
    """Test hook: ``BULKCHIME_CRASHPOINT=after_intent=3`` SIGKILLs the process there.

    The crash-safety tests use it to die at exact instants (after the intent is
    committed but before the request is sent, after the response but before the
    outcome is committed); unset, it costs one dictionary look-up per batch.
    """

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


_crash_points = _CrashPoints(os.environ.get("BULKCHIME_CRASHPOINT"))


class _Stopped(Exception):
    """Raised inside a retry loop when the job is stopping: do not send again."""


class Engine:
    """Runs one job against one open checkpoint."""

    def __init__(self, job: JobSpec, options: RunOptions, checkpoint: Checkpoint) -> None:
        self.job = job
        self.options = options
        self.checkpoint = checkpoint
        self.actions: list[ActionSpec] = [get_action(name) for name in job.actions]
        self.stats = RequestStats()
        rate = job.limits.rate
        self.limiter = RateLimiter(
            rate or DEFAULT_RATE,
            # A quarter second, not the server's full second: a fresh bucket must not
            # overrun a server bucket someone else has half spent (benchmarks.rate).
            job.limits.burst or (client_burst(rate) if rate else DEFAULT_BURST),
            ceiling=rate,
        )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint")
        self._stopping = asyncio.Event()
        self._abort: JobAborted | None = None
        self._finished_ok = 0
        self._finished_failed = 0
        self._account_ids: dict[str, str] = {}
        self._checked_accounts: set[str] = set()
        self.started = time.monotonic()

    # -- plumbing ------------------------------------------------------------------

    async def _db(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    def close(self) -> None:
        """Release the checkpoint thread."""
        self._executor.shutdown(wait=True)

    def stop(self) -> None:
        """Stop taking new batches; in-flight requests finish and are recorded."""
        self._stopping.set()

    @property
    def finished_this_run(self) -> int:
        """Items this run recorded as succeeded or failed."""
        return self._finished_ok + self._finished_failed

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called or the job aborted."""
        return self._stopping.is_set()

    # -- the job -------------------------------------------------------------------

    def job_identity(self) -> dict[str, Any]:
        """What makes a checkpoint belong to this job (stored, compared on resume)."""
        job = self.job
        path = job.input.path
        fingerprint = None
        if path and path != "-":
            try:
                fingerprint = file_fingerprint(path)
            except OSError:
                fingerprint = None  # reading it will report the problem with file and field
        return {
            "actions": list(job.actions),
            "account_id": job.account_id,
            "account_name": job.account_name,
            "key": job.input.key,
            "input": path,
            "input_sha256": fingerprint,
            "query": dict(job.input.query) if job.input.query else None,
            "params": {k: job.params[k] for k in sorted(job.params)},
        }

    async def run_with_client(self) -> None:
        """Open the job's Chime client and :meth:`run` with it."""
        job = self.job
        async with open_client(
            region=job.region,
            endpoint_url=job.endpoint_url,
            profile=job.profile,
            concurrency=job.limits.concurrency,
            timeout=job.limits.timeout,
        ) as client:
            await self.run(ChimeApi(client, self.limiter, self.stats, self._stopping))

    async def run(self, api: ChimeApi) -> None:
        """Ingest (if needed), then send every phase."""
        needs_ingest = await self._db(
            self.checkpoint.check_job, self.job_identity(), force=self.options.force
        )
        if self.options.retry_failed:
            requeued = await self._db(self.checkpoint.retry_failed)
            log.info("retry_failed", requeued=requeued)
        # An input file is checked before anything goes over the network, unless its rows
        # need the job's account id, which an account_name must first be resolved to.
        file_first = (
            needs_ingest
            and bool(self.job.input.path)
            and self.actions[0].target is Target.USER
            and not self.job.account_name
        )
        if file_first:
            await self._ingest(api)
        await self._resolve_job_account(api)
        if needs_ingest and not file_first:
            await self._ingest(api)
        if not needs_ingest:
            log.info("resume", checkpoint=str(self.checkpoint.path))
        await self._db(self.checkpoint.set_info, "started", time.time())
        for phase, action in enumerate(self.actions):
            if self.stopping:
                break
            await self._run_phase(api, phase, action)
        await self._db(self.checkpoint.set_info, "finished", time.time())

    async def _resolve_job_account(self, api: ChimeApi) -> None:
        account_id = self.job.account_id
        if account_id and account_id not in self._checked_accounts:
            try:
                account = await self._lookup(api.get_account, account_id)
            except JobAborted as abort:
                # A 403 here is this account's, if the credentials work elsewhere.
                if isinstance(abort.__cause__, AuthError) and await api.credentials_work():
                    raise InputError(
                        self.job.source or "<command line>",
                        f"these credentials may not administer account {account_id}: "
                        f"{abort.__cause__.message}",
                        field="account_id",
                    ) from None
                raise
            if account is None:
                raise InputError(
                    self.job.source or "<command line>",
                    f"account {account_id!r} does not exist. HINT: list the accounts with "
                    "'aws chime list-accounts', or give account_name",
                    field="account_id",
                )
            self._checked_accounts.add(account_id)
            self._require_team(account, "account_id")
        name = self.job.account_name
        if not name or name in self._account_ids:
            return
        accounts = await self._lookup(api.list_accounts, name=name)
        if not accounts and self.options.dry_run:
            # Plan a job whose account an earlier step creates (a Team account for invites).
            placeholder = f"(no account named {name!r} yet)"
            self._account_ids[name] = placeholder
            self._checked_accounts.add(placeholder)
            log.warning("account.not_found", account_name=name, hint="a real run exits 2")
            return
        if len(accounts) != 1:
            found = ", ".join(str(a.get("AccountId")) for a in accounts) or "none"
            hint = (
                "use account_id to pick one"
                if accounts
                else "check the exact name (case included), or create the account first "
                "with bulkchime create-account"
            )
            raise InputError(
                self.job.source or "<command line>",
                f"must match exactly one account; {name!r} matches {found}. HINT: {hint}",
                field="account_name",
            )
        self._account_ids[name] = str(accounts[0]["AccountId"])
        self._require_team(accounts[0], "account_name")

    def _require_team(self, account: Mapping[str, Any], field: str) -> None:
        """Invites go to Team accounts only: say so before anything is sent."""
        kind = account.get("AccountType")
        if "invite" in self.job.actions and kind and kind != "Team":
            raise InputError(
                self.job.source or "<command line>",
                f"invite needs a Team account; {account.get('Name')!r} "
                f"({account.get('AccountId')}) is {kind}. HINT: create a Team account with "
                "bulkchime create-account, or invite into an existing one",
                field=field,
            )

    @property
    def job_account(self) -> str | None:
        """The account the job names, by id or by (resolved) name."""
        if self.job.account_id:
            return self.job.account_id
        if self.job.account_name:
            return self._account_ids.get(self.job.account_name)
        return None

    # -- ingest --------------------------------------------------------------------

    async def _ingest(self, api: ChimeApi) -> None:
        first = self.actions[0]
        if first.target is Target.ACCOUNT and not self.job.input.path:
            await self._ingest_one_account(first)
        elif first.reads_account or self.job.input.query is not None or not self.job.input.path:
            await self._ingest_from_account(api, first)
        else:
            count = await self._db(self.checkpoint.ingest, self.job.actions, self._records())
            log.info("ingested", items=count, input=self.job.input.path)

    async def _ingest_one_account(self, action: ActionSpec) -> None:
        account_id = self.job_account
        if account_id is None:
            raise InputError(
                self.job.source or "<command line>",
                f"{action.name} needs the account: --account, or an input file of account ids",
                field="account_id",
            )
        record = ItemRecord(line=None, key=account_id, raw_key=account_id, account_id=account_id)
        await self._db(self.checkpoint.ingest, self.job.actions, [record])

    def _records(self) -> Iterator[ItemRecord]:
        job = self.job
        path = job.input.path
        assert path is not None
        display = "<stdin>" if path == "-" else path
        for row in read_source(path, job.input.key, stdin=self.options.stdin, display_name=display):
            yield self._record(row, display)

    def _record(self, row: SourceRow, display: str) -> ItemRecord:
        job = self.job
        key_kind = job.input.key
        account_id = row.account_id or self.job_account
        fields: dict[str, str] = {}
        rejection = row.rejection
        for name in ("license", "name"):
            value = row.fields.get(name)
            if value:
                fields[name] = value
        if rejection is None and "license" in fields and fields["license"] not in LICENSES:
            rejection = f"license {fields['license']!r} is not one of {', '.join(LICENSES)}"
        target = self.actions[0].target
        if target is Target.USER and key_kind == "user_id" and not account_id and not rejection:
            raise InputError(
                display,
                "row gives a user_id but no account_id, and the job names no account. "
                "HINT: add an account_id column, or --account / account_id in the job",
                line=row.line,
                field="account_id",
            )
        if target is Target.USER and "invite" in job.actions and not account_id and not rejection:
            raise InputError(
                display,
                "invite needs the Team account to invite into. HINT: --account or account_id",
                line=row.line,
                field="account_id",
            )
        for spec in self.actions:
            for param in spec.required_params:
                if not rejection and not (fields.get(param) or job.params.get(param)):
                    rejection = (
                        f"no {param}: the {param!r} cell is empty and the job has no params.{param}"
                    )
        return ItemRecord(
            line=row.line,
            key=row.key,
            raw_key=row.raw_key,
            account_id=row.key if key_kind == "account_id" else account_id,
            email=row.key if key_kind == "email" else None,
            user_id=row.key if key_kind == "user_id" else None,
            fields=fields or None,
            rejection=rejection,
        )

    async def _ingest_from_account(self, api: ChimeApi, action: ActionSpec) -> None:
        account_id = self.job_account
        if account_id is None:
            raise InputError(
                self.job.source or "<command line>",
                f"{action.name} reads users from an account; name it. "
                "HINT: --account or account_id",
                field="account_id",
            )
        query = {_QUERY_FIELDS[name]: value for name, value in (self.job.input.query or {}).items()}
        done = action.reads_account
        chunk: list[ItemRecord] = []
        total = 0

        async def flush() -> None:
            nonlocal chunk
            await self._db(self.checkpoint.ingest_chunk, self.job.actions, chunk)
            chunk = []

        async for user in self._scan(api, account_id):
            if any(str(user.get(name)) != value for name, value in query.items()):
                continue
            email = str(user.get("PrimaryEmail") or "") or None
            user_id = str(user["UserId"])
            chunk.append(
                ItemRecord(
                    line=None,
                    key=email.lower() if email else user_id,
                    raw_key=email or user_id,
                    account_id=account_id,
                    email=email.lower() if email else None,
                    user_id=user_id,
                    result=public_user(user) if done else None,
                )
            )
            total += 1
            if len(chunk) >= 2000:
                await flush()
        await flush()
        await self._db(self.checkpoint.finish_ingest)
        log.info("ingested", items=total, account_id=account_id, query=self.job.input.query)

    async def _scan(self, api: ChimeApi, account_id: str) -> AsyncIterator[dict[str, Any]]:
        """Every user of *account_id*, each page retried as a look-up."""
        token: str | None = None
        while True:
            users, token = await self._lookup(api.users_page, account_id, token)
            for user in users:
                yield user
            if not token:
                return

    async def _lookup(self, fn: Callable[..., Awaitable[_T]], *args: Any, **kwargs: Any) -> _T:
        """A read-only call, retried like any other; auth errors and dead servers abort."""
        attempts = self.job.limits.max_attempts
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(attempts),
                wait=backoff_wait,
                retry=retry_if_exception_type(RetryableError),
                sleep=self._sleep,
                reraise=True,
            ):
                with attempt:
                    return await fn(*args, **kwargs)
        except AuthError as error:
            raise JobAborted(f"authentication failed: {error}") from error
        except RetryableError as error:
            # Without look-ups nothing can be sent; the checkpoint keeps everything.
            raise JobAborted(
                f"a look-up got no usable answer in {attempts} attempts ({error}). HINT: "
                "check --endpoint-url / the network and that the service is up; then run "
                "the same command again to resume"
            ) from error
        raise AssertionError("unreachable")  # pragma: no cover

    # -- one phase -----------------------------------------------------------------

    async def _run_phase(self, api: ChimeApi, phase: int, action: ActionSpec) -> None:
        skipped = await self._db(self.checkpoint.skip_after_failed_phase, phase)
        if skipped:
            log.info("phase.skipped_items", action=action.name, skipped=skipped)
        await self._recover_in_flight(api, phase, action)
        if action.reads_account:
            return
        if action.target is Target.USER:
            # Accounts first, so that look-ups are not spent on a missing or forbidden
            # account; then again for the accounts that resolution found.
            await self._check_accounts(api, phase)
            await self._resolve_users(api, phase, action)
            await self._check_accounts(api, phase)
        if self.options.dry_run:
            return
        log.info("phase.start", action=action.name, phase=phase)
        await self._send_phase(api, phase, action)
        counts = await self._db(self.checkpoint.phase_counts, phase)
        log.info("phase.end", action=action.name, phase=phase, **counts)

    async def _recover_in_flight(self, api: ChimeApi, phase: int, action: ActionSpec) -> None:
        """Decide what to do with tasks a killed run left ``in_flight``."""
        if action.idempotent:
            reset = await self._db(self.checkpoint.reset_in_flight, phase)
            if reset:
                log.info("recover.resend", action=action.name, items=reset)
            return
        items = await self._db(lambda: list(self.checkpoint.tasks_in_state(phase, State.IN_FLIGHT)))
        outcomes = await self._verify_all(api, action, items)
        if outcomes:
            await self._db(self.checkpoint.record, outcomes)
            log.info(
                "recover.verified",
                action=action.name,
                items=len(outcomes),
                already_done=sum(o.state is State.DONE for o in outcomes),
            )

    async def _verify_all(
        self, api: ChimeApi, action: ActionSpec, items: Sequence[WorkItem]
    ) -> list[TaskOutcome]:
        """:meth:`_verify` each item, as many at once as the job's concurrency allows."""
        semaphore = asyncio.Semaphore(self.job.limits.concurrency)

        async def one(item: WorkItem) -> TaskOutcome:
            async with semaphore:
                return await self._verify(api, action, item)

        return list(await asyncio.gather(*(one(item) for item in items)))

    async def _verify(self, api: ChimeApi, action: ActionSpec, item: WorkItem) -> TaskOutcome:
        """Check on the server whether a non-idempotent send took effect before the crash."""
        if action.name == "invite" and item.account_id and item.email:
            user = await self._lookup(api.find_user, item.account_id, item.email)
            if user is not None:
                return TaskOutcome(
                    item.item_id,
                    item.phase,
                    State.DONE,
                    message="already invited: the email is in the account (ListUsers)",
                    result={"UserId": str(user.get("UserId"))},
                    sends=0,
                )
            return TaskOutcome(item.item_id, item.phase, State.PENDING, sends=0)
        if action.name == "create-account":
            accounts = await self._lookup(api.list_accounts, name=item.key)
            if accounts:
                return TaskOutcome(
                    item.item_id,
                    item.phase,
                    State.DONE,
                    message="already created (verified with ListAccounts)",
                    result={"AccountId": str(accounts[0].get("AccountId"))},
                    sends=0,
                )
            return TaskOutcome(item.item_id, item.phase, State.PENDING, sends=0)
        return TaskOutcome(
            item.item_id,
            item.phase,
            State.FAILED,
            error_code="OutcomeUnknown",
            message=(
                f"{action.name} was sent but its outcome was lost (crash or timeout), and the "
                "service cannot tell "
                "whether it took effect; not repeated. HINT: check the user, then --retry-failed"
            ),
            sends=0,
        )

    async def _resolve_users(self, api: ChimeApi, phase: int, action: ActionSpec) -> None:
        """Find accounts and user ids for items given by email (streamed, per account)."""
        if action.name == "invite":
            return
        counts = await self._db(self.checkpoint.unresolved_counts, phase)
        for account_id, count in counts.items():
            if account_id is not None and account_id.startswith("(no account named"):
                continue  # a dry run's placeholder: nothing to look up yet
            if account_id is not None and count > SCAN_THRESHOLD:
                await self._resolve_by_scan(api, account_id, phase)
                continue
            after = 0
            while True:
                page = await self._db(
                    self.checkpoint.unresolved_page, phase, account_id, after, PAGE_SIZE
                )
                if not page:
                    break
                after = page[-1].item_id
                if account_id is None:
                    await self._resolve_accounts(api, page)
                else:
                    await self._resolve_each(api, account_id, page)
        # Whatever is still unresolved does not exist.
        missing = await self._db(self.checkpoint.fail_unresolved, phase)
        if missing:
            self._finished_failed += missing
            self._check_threshold()
            log.info("resolve.not_found", items=missing)

    async def _resolve_each(
        self, api: ChimeApi, account_id: str, items: Sequence[WorkItem]
    ) -> None:
        semaphore = asyncio.Semaphore(self.job.limits.concurrency)
        found: list[tuple[int, str, str | None]] = []

        async def one(item: WorkItem) -> None:
            async with semaphore:
                user = await self._lookup(api.find_user, account_id, item.email or item.key)
            if user is not None:
                found.append((item.item_id, str(user["UserId"]), None))

        await asyncio.gather(*(one(item) for item in items))
        await self._db(self.checkpoint.set_user_ids, found)
        log.info("resolve.lookups", account_id=account_id, emails=len(items), found=len(found))

    async def _resolve_by_scan(self, api: ChimeApi, account_id: str, phase: int) -> None:
        pairs: list[tuple[str, str]] = []
        scanned = 0
        async for user in self._scan(api, account_id):
            email = user.get("PrimaryEmail")
            if email:
                pairs.append((str(email).lower(), str(user["UserId"])))
            scanned += 1
            if len(pairs) >= 5000:
                await self._db(self.checkpoint.add_directory, account_id, pairs)
                pairs = []
        await self._db(self.checkpoint.add_directory, account_id, pairs)
        resolved = await self._db(self.checkpoint.resolve_from_directory, account_id, phase)
        log.info("resolve.scan", account_id=account_id, users_scanned=scanned, resolved=resolved)

    async def _resolve_accounts(self, api: ChimeApi, items: Sequence[WorkItem]) -> None:
        semaphore = asyncio.Semaphore(self.job.limits.concurrency)
        found: list[tuple[int, str, str | None]] = []

        async def one(item: WorkItem) -> None:
            email = item.email or item.key
            async with semaphore:
                accounts = await self._lookup(api.list_accounts, user_email=email)
                if not accounts:
                    return
                account_id = str(accounts[0]["AccountId"])
                user = await self._lookup(api.find_user, account_id, email)
            if user is not None:
                found.append((item.item_id, str(user["UserId"]), account_id))

        await asyncio.gather(*(one(item) for item in items))
        await self._db(self.checkpoint.set_user_ids, found)
        log.info("resolve.accounts", emails=len(items), found=len(found))

    async def _check_accounts(self, api: ChimeApi, phase: int) -> None:
        """Fail every item of an account the service does not know, before sending any."""
        for account_id in await self._db(self.checkpoint.accounts_pending, phase):
            if account_id is None or account_id in self._checked_accounts:
                continue
            try:
                account = await self._lookup(api.get_account, account_id)
            except JobAborted as abort:
                error = abort.__cause__
                if not isinstance(error, AuthError) or not await self._account_forbidden(
                    api, phase, account_id, error
                ):
                    raise
                continue
            self._checked_accounts.add(account_id)
            if account is None:
                failed = await self._db(
                    self.checkpoint.fail_account,
                    phase,
                    account_id,
                    "NotFoundException",
                    f"account {account_id} does not exist",
                )
                log.warning("account.not_found", account_id=account_id, items=failed)
                self._finished_failed += failed
                self._check_threshold()

    async def _account_forbidden(
        self, api: ChimeApi, phase: int, account_id: str, error: AuthError
    ) -> bool:
        """Handle a 403 on one account: if the credentials work elsewhere, fail that account.

        Returns ``False`` when the credentials themselves are refused (abort the job).
        """
        if error.status != 403 or not await api.credentials_work():
            return False
        self._checked_accounts.add(account_id)
        failed = await self._db(
            self.checkpoint.fail_account, phase, account_id, error.code, error.message
        )
        self._finished_failed += failed
        log.error("account.forbidden", account_id=account_id, items=failed, code=error.code)
        self._check_threshold()
        return True

    # -- sending -------------------------------------------------------------------

    async def _send_phase(self, api: ChimeApi, phase: int, action: ActionSpec) -> None:
        concurrency = self.job.limits.concurrency
        queue: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize=concurrency * 2)
        outstanding = 0
        producing = True
        all_done = asyncio.Event()
        background: set[asyncio.Task[None]] = set()
        # Items whose backoff is over, waiting to ride in the producer's next full batches:
        # a retry batch of the one or two users the service throttled inside a 200 would
        # otherwise cost a whole request of the rate budget.
        retry_pool: dict[str | None, list[WorkItem]] = {}

        def settle() -> None:
            nonlocal outstanding
            outstanding -= 1
            if outstanding == 0 and not producing:
                all_done.set()

        async def put(batch: Batch) -> None:
            await queue.put(batch)

        def requeue(batch: Batch, delay: float) -> None:
            nonlocal outstanding
            outstanding += 1

            async def later() -> None:
                try:
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if self.stopping:
                        settle()
                        return
                    if producing and not batch.bisected and len(batch) < action.items_per_request:
                        # The producer owns these items now (it flushes the pool before it ends).
                        retry_pool.setdefault(batch.account_id, []).extend(batch.items)
                        settle()
                        return
                    await put(batch)
                except asyncio.CancelledError:
                    settle()
                    raise

            task = asyncio.create_task(later())
            background.add(task)
            task.add_done_callback(background.discard)

        async def producer() -> None:
            nonlocal outstanding, producing
            try:
                for account_id in await self._db(self.checkpoint.accounts_pending, phase):
                    after = 0
                    while not self.stopping:
                        page = await self._db(
                            self.checkpoint.pending_page, phase, after, PAGE_SIZE, account_id
                        )
                        if not page:
                            break
                        after = page[-1].item_id
                        page = retry_pool.pop(account_id, []) + page
                        for batch in batches(action, phase, account_id, page):
                            if self.stopping:
                                break
                            outstanding += 1
                            await put(batch)
                    if self.stopping:
                        break
                while retry_pool and not self.stopping:
                    account_id, items = retry_pool.popitem()
                    for batch in batches(action, phase, account_id, items):
                        outstanding += 1
                        await put(batch)
            finally:
                producing = False
                if outstanding == 0:
                    all_done.set()

        async def worker() -> None:
            while True:
                batch = await queue.get()
                if batch is None:
                    return
                try:
                    if self.stopping:
                        continue
                    await self._send_batch(api, batch, requeue)
                except Exception as error:  # a bug: stop cleanly, keep the checkpoint resumable
                    log.exception("batch.crashed", action=batch.action.name, size=len(batch))
                    self._fail_job(JobAborted(f"internal error while sending a batch: {error!r}"))
                finally:
                    settle()

        async def stop_watcher() -> None:
            await self._stopping.wait()
            all_done.set()

        workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
        producer_task = asyncio.create_task(producer())
        watcher = asyncio.create_task(stop_watcher())
        progress = asyncio.create_task(self._progress(action, phase))
        try:
            await all_done.wait()
        finally:
            for task in (producer_task, watcher, *background):
                task.cancel()
            # Batches still queued were never marked in flight: they stay pending.
            while not queue.empty():
                queue.get_nowait()
            for _ in workers:
                queue.put_nowait(None)
            # In-flight requests get a bounded time to finish and be recorded; a request
            # cut off here stays in_flight in the checkpoint and is resolved on resume.
            _, late = await asyncio.wait(workers, timeout=SHUTDOWN_GRACE_SECONDS)
            for task in late:
                task.cancel()
            progress.cancel()  # last: its final update shows every recorded outcome
            await asyncio.gather(
                producer_task, watcher, progress, *background, *workers, return_exceptions=True
            )
        if self._abort is not None:
            raise self._abort

    async def _send_batch(
        self, api: ChimeApi, batch: Batch, requeue: Callable[[Batch, float], None]
    ) -> None:
        action = batch.action
        items = batch.items
        await self._db(self.checkpoint.mark_in_flight, items)
        _crash_points.reached("after_intent")
        budget = max(1, self.job.limits.max_attempts - max(item.attempts for item in items))
        sends = 0
        outcomes: list[TaskOutcome] = []
        retry_items: list[WorkItem] = []

        def resend_allowed(error: BaseException) -> bool:
            # A non-idempotent request that may have been carried out is verified, not resent.
            return isinstance(error, RetryableError) and (
                action.idempotent or not error.maybe_applied
            )

        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(budget),
                wait=backoff_wait,
                retry=retry_if_exception(resend_allowed),
                sleep=self._sleep,
                reraise=True,
            ):
                with attempt:
                    if sends and self.stopping:
                        raise _Stopped
                    sends += 1
                    results = await api.execute(action, batch.account_id, items, self.job.params)
            _crash_points.reached("after_send")
        except (_Stopped, Interrupted) as stopped:
            made = sends - 1 if isinstance(stopped, Interrupted) else sends  # that one never left
            outcomes = [TaskOutcome(i.item_id, i.phase, State.PENDING, sends=made) for i in items]
        except AuthError as error:
            if batch.account_id and await self._account_forbidden(
                api, batch.phase, batch.account_id, error
            ):
                outcomes = [self._failed(i, error, sends) for i in items]
                await self._db(self.checkpoint.record, outcomes)
                return
            # Refused before anything happened: back to pending, and stop the job.
            outcomes = [
                TaskOutcome(
                    i.item_id, i.phase, State.PENDING, error.code, error.message, sends=sends
                )
                for i in items
            ]
            self._fail_job(JobAborted(f"authentication failed: {error}"))
        except BadBatchError as error:
            if len(items) == 1:
                outcomes = [self._failed(items[0], error, sends)]
            else:
                for item in items:
                    item.attempts += sends
                await self._db(
                    self.checkpoint.record,
                    [TaskOutcome(i.item_id, i.phase, State.PENDING, sends=sends) for i in items],
                )
                log.info("batch.bisect", action=action.name, size=len(items), code=error.code)
                for half in halves(batch):
                    requeue(half, 0.0)
                return
        except PermanentError as error:
            outcomes = [self._failed(i, error, sends) for i in items]
        except RetryableError as error:
            if resend_allowed(error):  # out of attempts, for the most-sent item at least
                for item in items:
                    if item.attempts + sends < self.job.limits.max_attempts:
                        # Batched with retried items sent more often: this one has sends left.
                        outcomes.append(
                            TaskOutcome(
                                item.item_id, item.phase, State.PENDING, error.code,
                                error.message, sends=sends,
                            )
                        )  # fmt: skip
                        item.attempts += sends
                        retry_items.append(item)
                    else:
                        note = f"gave up after {item.attempts + sends} attempts"
                        outcomes.append(self._failed(item, error, sends, note))
            else:
                outcomes = await self._verify_after_error(api, action, items, error, sends)
                retry_items = [
                    i for i, o in zip(items, outcomes, strict=True) if o.state is State.PENDING
                ]
                for item in retry_items:
                    item.attempts += sends
        else:
            for item, result in zip(items, results, strict=True):
                outcome = self._outcome(item, result, sends)
                if outcome.state is State.PENDING:
                    item.attempts += sends
                    retry_items.append(item)
                outcomes.append(outcome)
        await self._db(self.checkpoint.record, outcomes)
        self._count(outcomes)
        (log.debug if self.options.progress_bar is not None else log.info)(
            "batch",
            action=action.name,
            account_id=batch.account_id,
            size=len(items),
            sends=sends,
            succeeded=sum(o.state is State.DONE for o in outcomes),
            failed=sum(o.state is State.FAILED for o in outcomes),
            retrying=len(retry_items),
            rate=round(api.limiter.rate, 2),
        )
        if retry_items and not self.stopping:
            worst = max(item.attempts for item in retry_items)
            retry_batch = Batch(action, batch.phase, batch.account_id, retry_items)
            requeue(retry_batch, backoff_seconds(worst))

    async def _verify_after_error(
        self,
        api: ChimeApi,
        action: ActionSpec,
        items: Sequence[WorkItem],
        error: RetryableError,
        sends: int,
    ) -> list[TaskOutcome]:
        """After an ambiguous failure of a non-idempotent request, ask the server what happened."""
        log.warning("batch.verify", action=action.name, size=len(items), code=error.code)
        outcomes: list[TaskOutcome] = []
        for item, verified in zip(items, await self._verify_all(api, action, items), strict=True):
            if verified.state is State.PENDING:
                if item.attempts + sends >= self.job.limits.max_attempts:
                    verified = self._failed(
                        item, error, 0, f"gave up after {item.attempts + sends} attempts"
                    )
                else:
                    verified = TaskOutcome(
                        item.item_id, item.phase, State.PENDING, error.code, error.message, sends=0
                    )
            outcomes.append(
                TaskOutcome(
                    verified.item_id,
                    verified.phase,
                    verified.state,
                    verified.error_code,
                    verified.message,
                    verified.result,
                    sends,
                )
            )
        return outcomes

    async def _sleep(self, seconds: float) -> None:
        """Backoff sleep that ends early when the job stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    def _outcome(self, item: WorkItem, result: ItemResult, sends: int) -> TaskOutcome:
        if result.ok:
            return TaskOutcome(
                item.item_id, item.phase, State.DONE, None, result.message, result.result, sends
            )
        if result.retryable and item.attempts + sends < self.job.limits.max_attempts:
            return TaskOutcome(
                item.item_id, item.phase, State.PENDING, result.code, result.message, sends=sends
            )
        message = result.message or ""
        if result.retryable:
            message = f"gave up after {item.attempts + sends} attempts: {message}"
        return TaskOutcome(
            item.item_id, item.phase, State.FAILED, result.code, message, sends=sends
        )

    @staticmethod
    def _failed(
        item: WorkItem, error: ApiError, sends: int, note: str | None = None
    ) -> TaskOutcome:
        message = error.message or error.code
        if note:
            message = f"{note}: {message}"
        return TaskOutcome(item.item_id, item.phase, State.FAILED, error.code, message, sends=sends)

    def _count(self, outcomes: Sequence[TaskOutcome]) -> None:
        for outcome in outcomes:
            if outcome.state is State.DONE:
                self._finished_ok += 1
            elif outcome.state is State.FAILED:
                self._finished_failed += 1
        self._check_threshold()

    def _check_threshold(self) -> None:
        """Abort when permanent failures (sent or not: unknown users too) pass the threshold."""
        threshold = self.job.limits.failure_threshold
        finished = self._finished_ok + self._finished_failed
        if (
            threshold is not None
            and finished >= FAILURE_THRESHOLD_MIN_ITEMS
            and self._finished_failed / finished > threshold
        ):
            self._fail_job(
                JobAborted(
                    f"{self._finished_failed} of {finished} finished items failed, more than the "
                    f"failure_threshold of {threshold:.0%}; stopped so that the rest are not "
                    "failed one by one. HINT: read the report's error codes and fix the cause; "
                    "then the same command with --retry-failed sends the failed items again "
                    "(add --force if you changed the job file or the input)"
                )
            )

    def _fail_job(self, error: JobAborted) -> None:
        if self._abort is None:
            self._abort = error
            log.error("job.abort", reason=str(error))
        self.stop()

    async def _progress(self, action: ActionSpec, phase: int) -> None:
        """A ``progress`` event every few seconds; the live bar, when there is one, more often."""
        counts = await self._db(self.checkpoint.phase_counts, phase)
        base_ok, base_failed = self._finished_ok, self._finished_failed
        done_before = counts.get(State.DONE, 0)
        failed_before = counts.get(State.FAILED, 0)
        total = sum(
            counts.get(state, 0)
            for state in (State.DONE, State.FAILED, State.PENDING, State.IN_FLIGHT)
        )
        phase_started = time.monotonic()
        bar = self.options.progress_bar

        def snapshot() -> ProgressSnapshot:
            elapsed = time.monotonic() - phase_started
            ran = self._finished_ok - base_ok + self._finished_failed - base_failed
            return ProgressSnapshot(
                action=action.name,
                total=total,
                succeeded=done_before + self._finished_ok - base_ok,
                failed=failed_before + self._finished_failed - base_failed,
                items_per_second=ran / elapsed if elapsed > 0 else 0.0,
                rate=self.limiter.rate,
                throttled=self.stats.throttled,
            )

        last_event = phase_started
        try:
            while True:
                await asyncio.sleep(0.25 if bar is not None else PROGRESS_INTERVAL)
                now = snapshot()
                if bar is not None:
                    bar.update(now)
                    if time.monotonic() - last_event < PROGRESS_INTERVAL:
                        continue
                last_event = time.monotonic()
                left = now.total - now.succeeded - now.failed
                log.info(
                    "progress",
                    action=action.name,
                    total=now.total,
                    succeeded=now.succeeded,
                    failed=now.failed,
                    requests=self.stats.total,
                    throttled=self.stats.throttled,
                    rate=round(now.rate, 2),
                    items_per_second=round(now.items_per_second, 1),
                    eta_seconds=round(left / now.items_per_second)
                    if now.items_per_second > 0
                    else None,
                )
        finally:
            if bar is not None:
                bar.update(snapshot())

    # -- dry run -------------------------------------------------------------------

    async def plan(self) -> list[PlanLine]:
        """What a run would send, from the checkpoint after ingest and resolution."""
        lines: list[PlanLine] = []
        for phase, action in enumerate(self.actions):
            per_account = await self._db(self.checkpoint.pending_by_account, phase)
            for account_id, count in per_account.items():
                lines.append(PlanLine(action.name, account_id, count, action.items_per_request))
        return lines


async def _run(job: JobSpec, options: RunOptions, interrupts: _Interrupts | None) -> RunResult:
    if options.dry_run:
        with tempfile.TemporaryDirectory(prefix="bulkchime-plan-") as temp_dir:
            checkpoint = Checkpoint(Path(temp_dir) / "plan.ckpt.sqlite")
            try:
                return await _dry_run(job, options, checkpoint)
            finally:
                checkpoint.close()
    created = not options.checkpoint.exists()
    checkpoint = Checkpoint(options.checkpoint)
    try:
        return await _real_run(job, options, checkpoint, interrupts)
    except JobError:
        # Nothing was sent; a checkpoint this run created holds nothing worth keeping.
        checkpoint.discard_on_close = created
        raise
    finally:
        checkpoint.close()


async def _dry_run(job: JobSpec, options: RunOptions, checkpoint: Checkpoint) -> RunResult:
    engine = Engine(job, options, checkpoint)
    try:
        await engine.run_with_client()
        lines = await engine.plan()
        rejected = await engine._db(checkpoint.rejected_rows)
    finally:
        engine.close()
    options.out(_plan_text(lines, rejected, engine))
    return RunResult(
        0, Summary.from_checkpoint(checkpoint, engine.stats, 0.0), None, checkpoint.path
    )


async def _real_run(
    job: JobSpec, options: RunOptions, checkpoint: Checkpoint, interrupts: _Interrupts | None
) -> RunResult:
    engine = Engine(job, options, checkpoint)
    if interrupts is not None:
        interrupts.attach(engine)
    message: str | None = None
    exit_code = 0
    try:
        await engine.run_with_client()
    except JobAborted as error:
        exit_code, message = 3, str(error)
    except AuthError as error:
        exit_code, message = 3, f"authentication failed: {error}"
    finally:
        engine.close()
    if interrupts is not None and interrupts.count and exit_code == 0:
        exit_code = 130
    return _wrap_up(engine, options, checkpoint, exit_code, message)


class _Interrupts:
    """SIGINT and SIGTERM for the whole of a run: the first stops it, the second exits.

    Installed with :func:`signal.signal` before the event loop starts and restored
    after it has closed, so that no instant of a run (ingest, wrap-up, the loop's own
    shutdown) leaves a signal to the default handler and a ``KeyboardInterrupt``.
    """

    _SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.count = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._engine: Engine | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Interrupts:
        for sig in self._SIGNALS:
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def attach(self, engine: Engine) -> None:
        """Stop *engine* on the first signal (at once if it already came)."""
        self._loop, self._engine = asyncio.get_running_loop(), engine
        if self.count:
            self._stop(engine)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.count += 1
        if self.count > 1:
            # Every commit is atomic and reports are written by rename, so the
            # checkpoint is consistent at any instant; tasks left in flight are
            # resolved (or verified) when the job resumes.
            try:
                log.warning("interrupted.again", hint="exiting now; run the same command to resume")
            finally:
                os._exit(130)
        loop, engine = self._loop, self._engine
        if loop is not None and engine is not None and not loop.is_closed():
            # Signal handlers run between bytecodes: hand the work to the loop.
            loop.call_soon_threadsafe(self._stop, engine)

    @staticmethod
    def _stop(engine: Engine) -> None:
        log.warning("interrupted", hint="finishing in-flight requests; send again to quit now")
        engine.stop()


def _wrap_up(
    engine: Engine, options: RunOptions, checkpoint: Checkpoint, exit_code: int, message: str | None
) -> RunResult:
    if options.progress_bar is not None:
        options.progress_bar.stop()
    elapsed = time.monotonic() - engine.started
    summary = Summary.from_checkpoint(checkpoint, engine.stats, elapsed, engine.finished_this_run)
    report_path = options.report or default_report_path(checkpoint.path)
    write_report(checkpoint, report_path)
    if exit_code == 130 and not summary.unfinished:
        exit_code = 0  # interrupted after the last item: nothing is left to resume
    if exit_code == 0:
        exit_code = 0 if summary.all_succeeded else 1
    for line in summary.lines():
        options.out(line)
    options.out(f"report: {report_path}")
    options.out(f"checkpoint: {checkpoint.path}")
    if exit_code == 130:
        options.out("interrupted: run the same command again to resume")
    if message:
        options.out(f"aborted: {message}")
    if options.summary_json:
        summary.write_json(options.summary_json, exit_code=exit_code, report=report_path)
    return RunResult(exit_code, summary, report_path, checkpoint.path, message)


def default_report_path(checkpoint_path: Path) -> Path:
    """``<checkpoint stem>.report.jsonl`` beside the checkpoint."""
    stem = checkpoint_path.name.removesuffix(".sqlite").removesuffix(".ckpt")
    return checkpoint_path.with_name(stem + ".report.jsonl")


def _plan_text(
    lines: Sequence[PlanLine], rejected: Sequence[tuple[int | None, str, str]], engine: Engine
) -> str:
    items = sum(line.items for line in lines)
    requests = sum(line.requests for line in lines)
    out = [f"plan: {items} items in {requests} batches ({requests} requests)"]
    lookups = engine.stats.total
    out.append(
        f"look-ups: {lookups} read-only requests made while planning "
        f"({', '.join(f'{op} {n}' for op, n in sorted(engine.stats.requests.items())) or 'none'})"
    )
    for line in lines:
        out.append(
            f"  {line.action} account {line.account_id or '-'}: {line.items} items, "
            f"{line.requests} requests of up to {line.items_per_request}"
        )
    counts = Counter(status for _, status, _ in rejected)
    if rejected:
        out.append(
            f"not sent: {len(rejected)} rows ({', '.join(f'{k} {v}' for k, v in counts.items())})"
        )
        for line_no, status, reason in rejected[:50]:
            out.append(f"  line {line_no if line_no is not None else '-'}: {status}: {reason}")
        if len(rejected) > 50:
            out.append(f"  … and {len(rejected) - 50} more (see the report after a real run)")
    rate = engine.job.limits.rate or DEFAULT_RATE  # not the rate look-ups adapted to
    out.append(f"estimated duration: {requests / rate:.1f} s at {rate:g} requests/s")
    return "\n".join(out)


def run_job(job: JobSpec, options: RunOptions) -> RunResult:
    """Run *job* to the end (or to an abort or interrupt) and return how it ended.

    Job-level problems raise :class:`~bulkchime.errors.JobError` before anything
    mutating is sent.
    """
    if (
        options.handle_signals
        and not options.dry_run
        and threading.current_thread() is threading.main_thread()
    ):
        with _Interrupts() as interrupts:
            return asyncio.run(_run(job, options, interrupts))
    return asyncio.run(_run(job, options, None))

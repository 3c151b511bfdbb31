"""The errors bulkchime acts on, in one tree.

::

    BulkchimeError
    ├── JobError                 exit 2: the job cannot start; nothing was sent
    │   ├── InputError           a file, line and field are wrong
    │   ├── CheckpointInUse      another live run holds the checkpoint
    │   └── CheckpointMismatch   the checkpoint belongs to another input or job
    ├── JobAborted               exit 3: auth failure or failure threshold
    │   ├── BudgetUnavailable    the shared rate budget's Redis stopped answering
    │   ├── DiskFull             the checkpoint's (or the report's) disk is full
    │   └── StoreUnavailable     the shared checkpoint's PostgreSQL stopped answering
    ├── Interrupted              a change not sent because the job is stopping
    └── ApiError                 what one request's outcome means to the engine
        ├── RetryableError       429, 5xx, connection errors, timeouts: back off and resend
        ├── PermanentError       the request will not succeed as sent
        │   └── BadBatchError    400 on a whole batch: bisect to find the guilty item
        └── AuthError            401/403 at request level: abort the job

:func:`bulkchime.client.classify` is the one place that turns a botocore or
aiohttp exception into an :class:`ApiError`.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "AuthError",
    "BadBatchError",
    "BudgetUnavailable",
    "BulkchimeError",
    "CheckpointInUse",
    "CheckpointMismatch",
    "DiskFull",
    "InputError",
    "Interrupted",
    "JobAborted",
    "JobError",
    "LeaseLost",
    "PermanentError",
    "RetryableError",
    "StoreUnavailable",
]


class BulkchimeError(Exception):
    """Base of every error bulkchime raises on purpose."""


class JobError(BulkchimeError):
    """The job cannot run as given (exit code 2); nothing mutating was sent."""


class InputError(JobError):
    """A job file or input file is wrong at a known place.

    The message reads ``FILE:LINE: FIELD: what is wrong`` so that an operator can
    open the file at the right line.
    """

    def __init__(
        self, file: str, message: str, *, line: int | None = None, field: str | None = None
    ) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.reason = message
        where = file if line is None else f"{file}:{line}"
        what = message if field is None else f"{field}: {message}"
        super().__init__(f"{where}: {what}")


class CheckpointInUse(JobError):
    """Another live process holds the checkpoint's lock."""


class CheckpointMismatch(JobError):
    """The checkpoint was made for another input file, action or account."""


class Interrupted(BulkchimeError):
    """A change was about to be sent when the job was told to stop; it was not sent."""


class LeaseLost(BulkchimeError):
    """This runner's lease on its claims lapsed and other runners may have taken them
    over: nothing more may be sent for them."""


class JobAborted(BulkchimeError):
    """The job stopped on purpose (exit code 3); the checkpoint can be resumed."""


class BudgetUnavailable(JobAborted):
    """The Redis server of a shared rate budget has not answered for too long.

    No request may be sent without a ticket from the budget, so the job stops (exit
    code 3); running the same command again once Redis answers resumes it.
    """

    def __init__(self, address: str, seconds: float, reason: str) -> None:
        #: ``HOST:PORT/DB`` of the Redis server (never its password).
        self.address = address
        #: How long it went unanswered, in seconds.
        self.seconds = seconds
        #: The last error from the Redis client.
        self.reason = reason
        super().__init__(
            f"the rate budget's Redis server at {address} has not answered for {seconds:g} s "
            f"({reason}): nothing more is sent without its tickets. Run the same command "
            "again once Redis answers: the run resumes from its checkpoint"
        )


class DiskFull(JobAborted):
    """The disk holding the checkpoint, or the report, is full (exit code 3).

    What the checkpoint holds was committed before the failed write, so nothing is
    lost: once there is space, running the same command again resumes the job.
    """

    def __init__(self, path: str, reason: str, *, report: bool = False) -> None:
        #: The file that could not be written.
        self.path = path
        #: The error the write met (``database or disk is full``, ``No space left…``).
        self.reason = reason
        #: Whether it was the report (the job itself is then finished or resumable).
        self.report = report
        what = "report" if report else "checkpoint"
        super().__init__(
            f"the disk holding the {what} {path} is full ({reason}). Nothing is lost: free "
            "space on that disk, then run the same command again"
            + (
                "; it writes the report again"
                if report
                else "; the job resumes from its checkpoint"
            )
        )


class StoreUnavailable(JobAborted):
    """The PostgreSQL server of a shared checkpoint has not answered for too long.

    Nothing is sent whose intent cannot be recorded, so the job stops (exit code 3);
    running the same command again once PostgreSQL answers resumes it.
    """

    def __init__(self, server: str, job: str, seconds: float, reason: str) -> None:
        #: ``HOST:PORT/DB`` of the PostgreSQL server (never its password).
        self.server = server
        #: The job's name in that database.
        self.job = job
        #: How long it went unanswered, in seconds.
        self.seconds = seconds
        #: The last error from the PostgreSQL client.
        self.reason = reason
        super().__init__(
            f"the checkpoint's PostgreSQL server at {server} (job {job!r}) has not answered "
            f"for {seconds:g} s ({reason}). Run the same command again once PostgreSQL "
            "answers: the job resumes from its checkpoint, nothing is lost"
        )


class ApiError(BulkchimeError):
    """The outcome of one request, as the engine will act on it."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.status = status
        self.retry_after_seconds = retry_after_seconds
        super().__init__(f"{code}: {message}" if message else code)


class RetryableError(ApiError):
    """Sending the same request again later may succeed.

    :attr:`maybe_applied` says whether the service may have carried the request
    out before it failed (a timeout, a reset connection, a 500): harmless for an
    idempotent action, but a non-idempotent one must be verified, not resent.
    A 429, a 503 or a refused connection was certainly not applied.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        retry_after_seconds: float | None = None,
        maybe_applied: bool = False,
    ) -> None:
        super().__init__(code, message, status=status, retry_after_seconds=retry_after_seconds)
        self.maybe_applied = maybe_applied


class PermanentError(ApiError):
    """The request will fail the same way however often it is sent."""


class BadBatchError(PermanentError):
    """A batch was rejected whole with 400: some item in it is bad."""


class AuthError(ApiError):
    """The credentials or signature were refused: stop the whole job."""

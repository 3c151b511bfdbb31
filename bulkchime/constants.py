"""Numbers and names that the whole engine agrees on, kept in one place."""

from __future__ import annotations

__all__ = [
    "COMMAND_LINE",
    "EXIT_ABORTED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "DEFAULT_BURST",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_RATE",
    "DEFAULT_REGION",
    "LICENSES",
    "RETRYABLE_USER_ERROR_CODES",
    "SERVICE_NAME",
]

#: Exit codes (DESIGN.md): every item succeeded; some failed or were rejected; usage, job
#: or input error (nothing sent); aborted (auth failure, failure threshold); interrupted.
EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_ABORTED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

#: How a job built from command-line options is named in messages.
COMMAND_LINE = "<command line>"

#: botocore's name for the Chime service model.
SERVICE_NAME = "chime"
#: Region used when neither the job nor the AWS chain names one.
DEFAULT_REGION = "us-east-1"

#: Licenses accepted by the API (the model's ``License`` enum).
LICENSES: tuple[str, ...] = ("Basic", "Plus", "Pro", "ProTrial")

#: Requests per second when neither the job nor the command line gives a rate.
DEFAULT_RATE = 10.0
#: Token bucket size when none is given: one second's worth of requests.
DEFAULT_BURST = 10
#: The most requests in flight at once (a ceiling: the engine keeps rate x latency in
#: flight, Little's law, and no more).
DEFAULT_CONCURRENCY = 64
#: Sends of one item before it is recorded as failed with its last error.
DEFAULT_MAX_ATTEMPTS = 8

#: Per-user error codes (inside a 200 batch response) worth sending again.
RETRYABLE_USER_ERROR_CODES = frozenset(
    {"Throttled", "Throttling", "ServiceUnavailable", "ServiceFailure"}
)

"""The ``bulkchime`` command: parse options, build a job, call the library."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import structlog

from . import __version__
from ._cli_actions import ActionCommand, action_help, action_params, job_document
from ._cli_undo import add_undo_commands
from .actions import ACTIONS
from .constants import EXIT_ABORTED, EXIT_USAGE
from .errors import AuthError, BulkchimeError, DiskFull, JobAborted, JobError
from .job import JobSpec, job_from_dict, load_job
from .logs import LogFormat, configure_logging, logs_are_json

__all__ = ["main"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _where_options() -> list[Callable[[_F], _F]]:
    """Where the job's state lives: the checkpoint, and the budget shared with other jobs."""
    return [
        click.option(
            "--checkpoint",
            metavar="PATH|URL",
            help="Checkpoint file (SQLite). Re-running with the same one resumes. "
            "A postgresql://USER@HOST:PORT/DB?job=NAME URL shares the job among every "
            "process started with it (runners; see docs/scale-out.md).",
        ),
        click.option(
            "--budget",
            metavar="URL",
            help="Share the rate budget through Redis (redis://HOST:PORT/DB?key=NAME) with "
            "every process using the same key; --rate is its ceiling.",
        ),
        click.option(
            "--lease",
            metavar="SECONDS",
            type=click.FloatRange(min=1.0),
            default=30.0,
            show_default=True,
            help="Seconds a runner's claims of a shared checkpoint stay its own without a "
            "heartbeat; then other runners take them over.",
        ),
    ]


def _run_options(fn: _F) -> _F:
    """Add the options shared by ``run`` and every ad-hoc action command."""
    options = _where_options() + [
        click.option(
            "--report",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Per-item report; .csv for CSV, anything else JSONL. "
            "Default: <checkpoint stem>.report.jsonl beside the checkpoint.",
        ),
        click.option(
            "--endpoint-url",
            help="Send to this endpoint (e.g. the emulator). "
            "Also AWS_ENDPOINT_URL_CHIME / AWS_ENDPOINT_URL.",
        ),
        click.option("--region", help="AWS region (default: the AWS chain, else us-east-1)."),
        click.option("--profile", help="AWS profile for credentials."),
        click.option(
            "--rate",
            type=float,
            help="Requests per second (token bucket; a ceiling the engine lowers on 429s).",
        ),
        click.option("--burst", type=int, help="Token bucket size."),
        click.option(
            "--concurrency",
            type=int,
            help="Most requests in flight at once (a ceiling: the engine keeps rate x latency "
            "in flight). Default 64.",
        ),
        click.option("--max-attempts", type=int, help="Sends of one item before it fails."),
        click.option(
            "--timeout",
            type=float,
            help="Seconds to wait for a response before retrying (default 30).",
        ),
        click.option(
            "--failure-threshold",
            type=float,
            help="Abort (exit 3) when this share of finished items failed.",
        ),
        click.option(
            "--dry-run",
            is_flag=True,
            help="Print the plan; send nothing that changes anything (read-only look-ups only).",
        ),
        click.option(
            "--force",
            is_flag=True,
            help="Continue a checkpoint made for another input or job "
            "(done items are not sent again).",
        ),
        click.option(
            "--retry-failed", is_flag=True, help="Send failed items of this checkpoint again."
        ),
        click.option(
            "--summary-json",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Also write the summary as JSON here (for pipelines).",
        ),
        click.option(
            "--log-format",
            type=click.Choice(["auto", "json", "console"]),
            default="auto",
            show_default=True,
            help="Log format on stderr; auto = JSON unless stderr is a terminal.",
        ),
    ]
    if isinstance(fn, click.Command):
        for option in options:  # a Command appends its params in order
            option(fn)
        return fn
    for option in reversed(options):  # a function collects them in reverse
        fn = option(fn)
    return fn


def _execute(job: JobSpec, default_checkpoint: Path, **options: Any) -> None:
    """Apply overrides, run the job, exit with the contract's code."""
    from .engine import RunOptions, run_job

    configure_logging(options["log_format"])
    try:
        job = job.with_overrides(
            rate=options["rate"],
            burst=options["burst"],
            concurrency=options["concurrency"],
            max_attempts=options["max_attempts"],
            failure_threshold=options["failure_threshold"],
            timeout=options["timeout"],
            endpoint_url=options["endpoint_url"],
            region=options["region"],
            profile=options["profile"],
        )
        location: str | None = options["checkpoint"] or job.checkpoint
        checkpoint_url = location if location and _is_url(location) else None
        checkpoint = Path(location) if location and not checkpoint_url else default_checkpoint
        report = options["report"] or (Path(job.report) if job.report else None)
        if not options["dry_run"]:  # a pipeline's state/ folder need not exist yet
            for path in (checkpoint, report, options["summary_json"]):
                if path is not None:
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
        run_options = RunOptions(
            checkpoint=checkpoint,
            checkpoint_url=checkpoint_url,
            budget_url=options["budget"],
            lease_seconds=options["lease"],
            report=report,
            dry_run=options["dry_run"],
            force=options["force"],
            retry_failed=options["retry_failed"],
            summary_json=options["summary_json"],
            out=click.echo,
        )
        if sys.stderr.isatty() and options["log_format"] != "json" and not options["dry_run"]:
            from .progress import ProgressBar

            with ProgressBar() as bar:
                result = run_job(job, dataclasses.replace(run_options, progress_bar=bar))
        else:
            result = run_job(job, run_options)
    except JobError as error:
        _refuse(error)
    except (JobAborted, AuthError) as error:  # a dry run's (a real run reports its own)
        structlog.get_logger("bulkchime").error("job.abort", reason=str(error))
        click.echo(f"aborted: {error}", err=True)
        sys.exit(EXIT_ABORTED)
    sys.exit(result.exit_code)


def _refuse(error: JobError) -> NoReturn:
    """Say why the job cannot run (in a pipeline, also as an error event) and exit 2."""
    if logs_are_json():
        structlog.get_logger("bulkchime").error("job.error", error=str(error))
    click.echo(f"error: {error}", err=True)
    sys.exit(EXIT_USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bulkchime")
def cli() -> None:
    """Bulk operations on Amazon Chime users: batched, rate-limited, resumable.

    Exit codes: 0 every item succeeded; 1 some failed or were rejected; 2 usage, job or
    input error (nothing sent); 3 aborted (auth failure, failure threshold, full disk); 130
    interrupted (run the same command again to resume).
    """


@cli.command()
@click.argument("job_file", type=click.Path(dir_okay=False, path_type=Path))
@_run_options
def run(job_file: Path, **options: Any) -> None:
    """Run the job described by JOB_FILE (TOML; see jobs/ for templates)."""
    configure_logging(options["log_format"])
    try:
        job = load_job(job_file)
    except JobError as error:
        _refuse(error)
    _execute(job, job_file.with_name(f"{job.name}.ckpt.sqlite"), **options)


def _action_command(name: str) -> click.Command:
    """The command that runs the action *name* on the items its options name."""
    spec = ACTIONS[name]

    def command(**options: Any) -> None:
        document = job_document(spec, options)
        configure_logging(options["log_format"])
        try:
            job = job_from_dict(document)
        except JobError as error:
            _refuse(error)
        _execute(job, Path(f"{job.name}.ckpt.sqlite"), **options)

    doc, short = action_help(spec)
    cmd = ActionCommand(
        name, callback=command, params=action_params(spec), help=doc, short_help=short
    )
    return _run_options(cmd)


for _name in ACTIONS:
    cli.add_command(_action_command(_name))


def _is_url(location: str) -> bool:
    return "://" in location


class _CheckpointArg(click.ParamType):  # type: ignore[type-arg]
    """A checkpoint file that exists, or a shared checkpoint's URL."""

    name = "checkpoint"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and _is_url(value):
            return value
        path = click.Path(exists=True, dir_okay=False, path_type=Path)
        return path.convert(value, param, ctx)


add_undo_commands(cli, _run_options, _execute, _refuse, _CheckpointArg())


@cli.command("status")
@click.argument("checkpoint", type=_CheckpointArg())
def status_command(checkpoint: Path | str) -> None:
    """Show a checkpoint's progress: counts by outcome, errors, speed, ETA, lock holder
    (of a shared checkpoint, its runners)."""
    from .status import status_text

    try:
        click.echo(asyncio.run(status_text(checkpoint)))
    except BulkchimeError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_USAGE)


@cli.command()
@click.argument("checkpoint", type=_CheckpointArg())
@click.option(
    "--format",
    "report_format",
    type=click.Choice(["jsonl", "csv"]),
    default=None,
    help="Default: from --output's suffix, else jsonl.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here instead of stdout.",
)
def report_command(checkpoint: Path | str, report_format: str | None, output: Path | None) -> None:
    """Write the per-item report of CHECKPOINT (also while a run is going)."""
    try:
        asyncio.run(_report(checkpoint, report_format, output))
    except DiskFull as error:
        click.echo(f"aborted: {error}", err=True)
        sys.exit(EXIT_ABORTED)
    except BulkchimeError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_USAGE)


async def _report(checkpoint: Path | str, report_format: str | None, output: Path | None) -> None:
    from .report import write_report, write_report_to
    from .store import open_store

    store = await open_store(checkpoint, lock=False)
    try:
        if output is not None:
            await write_report(store, output, report_format)
        else:
            await write_report_to(store, sys.stdout, report_format or "jsonl")
    finally:
        await store.close()


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, show_default=True, help="0 picks a free port.")
@click.option("--accounts", default=2, show_default=True)
@click.option("--users-per-account", default=100, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--rate", default=0.0, show_default=True, help="Server token bucket; 0 = unlimited.")
@click.option("--burst", default=0, show_default=True, help="0 = max(1, rate).")
@click.option("--error-rate", default=0.0, show_default=True, help="Share of 500/503 answers.")
@click.option(
    "--user-error-rate",
    default=0.0,
    show_default=True,
    help="Share of per-user Throttled errors in batch calls.",
)
@click.option("--latency-ms", default=0.0, show_default=True)
@click.option("--access-key-id", default="testing", show_default=True)
@click.option("--secret-access-key", default="testing", show_default=True)
@click.option(
    "--session-token",
    "session_tokens",
    multiple=True,
    help="Accept only this session token (repeatable); other tokens get 403 'expired'.",
)
@click.option(
    "--forbidden-account",
    "forbidden_accounts",
    multiple=True,
    help="Answer 403 to every request on this account id (repeatable).",
)
def emulator(**options: Any) -> None:
    """Serve a local emulator of the Chime API (prints 'listening on URL' first)."""
    from .emulator import EmulatorConfig, run_emulator

    run_emulator(EmulatorConfig(**options))


@cli.command()
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bulkchime-demo"),
    show_default=True,
    help="Where the demo's input, checkpoint and report go.",
)
@click.option("--log-format", type=click.Choice(["auto", "json", "console"]), default="auto")
def demo(workdir: Path, log_format: LogFormat) -> None:
    """Start the emulator in-process and run a sample license migration through the engine."""
    from .demo import run_demo

    configure_logging(log_format)
    sys.exit(run_demo(workdir, out=click.echo))


def main() -> None:
    """Console entry point."""
    cli(prog_name="bulkchime")

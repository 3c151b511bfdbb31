"""The ``undo`` and ``verify`` commands (added to the ``bulkchime`` group by ``cli.py``)."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
import structlog

from .constants import EXIT_ABORTED, EXIT_OK, EXIT_PARTIAL
from .errors import AuthError, JobAborted, JobError
from .job import InputSpec, JobSpec
from .logs import configure_logging

__all__ = ["add_undo_commands"]

Execute = Callable[..., None]
Refuse = Callable[[JobError], NoReturn]


def _base_job(options: dict[str, Any]) -> JobSpec:
    """The endpoint, credentials and limits the command line gives (for the look-ups)."""
    base = JobSpec(name="undo", actions=("get-user",), input=InputSpec())
    limits = ("rate", "burst", "concurrency", "max_attempts", "timeout", "failure_threshold")
    given = {name: options.get(name) for name in limits}
    return base.with_overrides(
        **given,
        endpoint_url=options.get("endpoint_url"),
        region=options.get("region"),
        profile=options.get("profile"),
    )


def _aborted(error: Exception) -> NoReturn:
    structlog.get_logger("bulkchime").error("job.abort", reason=str(error))
    click.echo(f"aborted: {error}", err=True)
    sys.exit(EXIT_ABORTED)


def _original_report(source: str) -> str:
    from .engine.runner import default_report_path
    from .undo import default_undo_checkpoint

    if "://" in source:
        name = default_undo_checkpoint(source).name.removesuffix(".undo.ckpt.sqlite")
        return f"{name}.report.jsonl"
    return str(default_report_path(Path(source)))


def _undo(
    execute: Execute, refuse: Refuse, checkpoint: Path | str, options: dict[str, Any]
) -> None:
    from .undo import build_undo, default_undo_checkpoint, undo_input_path

    configure_logging(options["log_format"])
    source = str(checkpoint)
    given: str | None = options["checkpoint"]
    shared = given is not None and "://" in given
    path = Path(given) if given and not shared else default_undo_checkpoint(source)
    try:
        base = _base_job(options)
        with tempfile.TemporaryDirectory(prefix="bulkchime-undo-") as temp_dir:
            if options["dry_run"]:
                input_path, reuse = Path(temp_dir) / "undo.input.jsonl", False
            else:
                input_path = undo_input_path(path)
                reuse = shared or path.exists()
            job, notes = asyncio.run(
                build_undo(
                    source, base, input_path, reuse=reuse, report_hint=_original_report(source)
                )
            )
            for note in notes:
                click.echo(note, err=True)
            execute(job, path, **options)
    except JobError as error:
        refuse(error)
    except (JobAborted, AuthError) as error:
        _aborted(error)


def _verify(
    refuse: Refuse, checkpoint: Path | str, output: Path | None, options: dict[str, Any]
) -> None:
    from .verify import default_verify_report, verify_job

    configure_logging(options["log_format"])
    source = str(checkpoint)
    try:
        base = _base_job(options)
        report = output or default_verify_report(source)
        result = asyncio.run(verify_job(source, base, report, click.echo))
    except JobError as error:
        refuse(error)
    except (JobAborted, AuthError) as error:
        _aborted(error)
    sys.exit(EXIT_PARTIAL if result.drifted else EXIT_OK)


def add_undo_commands(
    group: click.Group,
    run_options: Callable[[click.Command], click.Command],
    execute: Execute,
    refuse: Refuse,
    checkpoint_arg: click.ParamType,  # type: ignore[type-arg]
) -> None:
    """Add ``undo`` (with the run options) and ``verify`` to *group*."""

    def undo(job_checkpoint: Path | str, **options: Any) -> None:
        _undo(execute, refuse, job_checkpoint, options)

    undo_command = click.Command(
        "undo",
        callback=undo,
        params=[click.Argument(["job_checkpoint"], type=checkpoint_arg, metavar="CHECKPOINT")],
        help="Undo the job of CHECKPOINT: put back what each succeeded item was before it "
        "(a license, user type, suspension, account name or settings), skipping items "
        "changed since. A job of its own: --dry-run plans it; its checkpoint is "
        "<stem>.undo.ckpt.sqlite unless --checkpoint; run it again to resume. logout, "
        "reset-pin, invite and reads cannot be undone (exit 2).",
        short_help="Undo a job from its checkpoint.",
    )
    group.add_command(run_options(undo_command))

    def verify(checkpoint: Path | str, output: Path | None, **options: Any) -> None:
        _verify(refuse, checkpoint, output, options)

    verify_params: list[click.Parameter] = [
        click.Argument(["checkpoint"], type=checkpoint_arg),
        click.Option(
            ["--output"],
            type=click.Path(dir_okay=False, path_type=Path),
            help="Drift report (JSONL). Default: <checkpoint stem>.verify.jsonl beside it.",
        ),
        click.Option(["--endpoint-url"], help="Read this endpoint (e.g. the emulator)."),
        click.Option(["--region"], help="AWS region (default: the AWS chain, else us-east-1)."),
        click.Option(["--profile"], help="AWS profile for credentials."),
        click.Option(["--rate"], type=float, help="Requests per second (read-only look-ups)."),
        click.Option(["--burst"], type=int, help="Token bucket size."),
        click.Option(["--concurrency"], type=int, help="Most requests in flight at once."),
        click.Option(["--max-attempts"], type=int, help="Sends of one look-up before it fails."),
        click.Option(["--timeout"], type=float, help="Seconds to wait for a response."),
        click.Option(
            ["--log-format"],
            type=click.Choice(["auto", "json", "console"]),
            default="auto",
            show_default=True,
            help="Log format on stderr; auto = JSON unless stderr is a terminal.",
        ),
    ]
    group.add_command(
        click.Command(
            "verify",
            callback=verify,
            params=verify_params,
            help="Re-read the server and report every succeeded item of CHECKPOINT whose "
            "state no longer holds (drift since the run), as a JSONL report and a count. "
            "Changes nothing; reads at --rate. Exit 1 when anything drifted, else 0.",
            short_help="Report drift since a job's run.",
        )
    )

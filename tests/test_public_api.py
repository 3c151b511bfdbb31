"""The public surface: what ``import bulkchime`` promises, and every module's ``__all__``."""

from __future__ import annotations

import importlib
import pkgutil

import bulkchime


def test_public_names_resolve_and_are_sorted() -> None:
    assert bulkchime.__all__ == sorted(bulkchime.__all__)
    for name in bulkchime.__all__:
        assert getattr(bulkchime, name) is not None, name


def test_the_public_surface_does_not_change_by_accident() -> None:
    assert set(bulkchime.__all__) == {
        "ACTIONS",
        "ActionSpec",
        "ApiError",
        "AuthError",
        "BadBatchError",
        "BulkchimeError",
        "Checkpoint",
        "CheckpointInUse",
        "CheckpointMismatch",
        "ChimeApi",
        "InputError",
        "InputSpec",
        "JobAborted",
        "JobError",
        "JobSpec",
        "Limits",
        "PermanentError",
        "RateLimiter",
        "RetryableError",
        "RunOptions",
        "RunResult",
        "SourceRow",
        "State",
        "Summary",
        "__version__",
        "classify",
        "job_from_dict",
        "load_job",
        "open_client",
        "read_source",
        "run_job",
    }


def test_every_module_declares_what_it_exports() -> None:
    for info in pkgutil.walk_packages(bulkchime.__path__, "bulkchime."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        exported = getattr(module, "__all__", None)
        assert exported is not None, f"{info.name} has no __all__"
        for name in exported:
            assert hasattr(module, name), f"{info.name}.__all__ names missing {name}"


def test_the_command_starts_without_loading_the_aws_sdk() -> None:
    import subprocess
    import sys

    code = "import sys, bulkchime.cli; print('aiobotocore' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

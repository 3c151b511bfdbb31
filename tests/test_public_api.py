"""The public surface: what ``import bulkchime`` promises, and every module's ``__all__``."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import pkgutil
from pathlib import Path

import pytest

import bulkchime
from bulkchime.actions import ACTIONS, ActionHandler

#: Each public name, and the module that defines it.
_SURFACE = {
    "ACTIONS": "actions",
    "ActionSpec": "actions",
    "ApiError": "errors",
    "AuthError": "errors",
    "BadBatchError": "errors",
    "BulkchimeError": "errors",
    "CheckpointInUse": "errors",
    "CheckpointMismatch": "errors",
    "CheckpointStore": "store",
    "Client": "client",
    "InputError": "errors",
    "InputSpec": "job",
    "JobAborted": "errors",
    "JobError": "errors",
    "JobSpec": "job",
    "Limits": "job",
    "LocalBudget": "budget",
    "PermanentError": "errors",
    "RateBudget": "budget",
    "RetryableError": "errors",
    "RunOptions": "engine",
    "RunResult": "engine",
    "SQLiteStore": "store",
    "SourceRow": "sources",
    "State": "store",
    "Summary": "report",
    "Ticket": "budget",
    "classify": "client",
    "job_from_dict": "job",
    "load_job": "job",
    "open_client": "client",
    "open_store": "store",
    "read_source": "sources",
    "run_job": "engine",
}


def test_the_public_surface_does_not_change_by_accident() -> None:
    assert bulkchime.__all__ == sorted(bulkchime.__all__)
    assert set(bulkchime.__all__) == {*_SURFACE, "__version__"}


@pytest.mark.parametrize("name", sorted(_SURFACE))
def test_each_public_name_is_its_module_s_object(name: str) -> None:
    module = importlib.import_module(f"bulkchime.{_SURFACE[name]}")
    assert getattr(bulkchime, name) is getattr(module, name)
    assert name in module.__all__


def test_public_names_are_what_they_claim() -> None:
    errors = [n for n, m in _SURFACE.items() if m == "errors"]
    for name in errors:
        assert issubclass(getattr(bulkchime, name), bulkchime.BulkchimeError), name
    for name in ("run_job", "load_job", "job_from_dict", "read_source", "classify"):
        assert inspect.isfunction(getattr(bulkchime, name)), name
    for name in ("open_store",):
        assert inspect.iscoroutinefunction(getattr(bulkchime, name)), name
    assert bulkchime.__version__ == importlib.metadata.version("bulkchime")


async def test_the_default_backends_implement_the_interfaces(tmp_path: Path) -> None:
    store = await bulkchime.open_store(tmp_path / "x.ckpt.sqlite")
    try:
        assert isinstance(store, bulkchime.CheckpointStore)
        assert isinstance(store, bulkchime.SQLiteStore)
    finally:
        await store.close()
    budget = bulkchime.LocalBudget(10.0, 2)
    assert isinstance(budget, bulkchime.RateBudget)
    await budget.close()


def test_every_action_has_a_handler() -> None:
    assert len(ACTIONS) == 14
    for spec in ACTIONS.values():
        assert isinstance(spec.handler, ActionHandler), spec.name
        assert spec.items_per_request >= 1


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

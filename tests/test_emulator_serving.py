"""Serving the emulator: from a thread, as a program, to the AWS CLI, and at size."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import botocore.session
import pytest
from botocore.config import Config

import bulkchime.emulator
from bulkchime.emulator import EmulatorConfig, emulator_in_thread

ROOT = Path(__file__).resolve().parents[1]


def python_env() -> dict[str, str]:
    """The environment for a child Python that imports bulkchime from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def test_public_surface() -> None:
    exported = bulkchime.emulator.__all__
    assert exported == sorted(exported)
    assert set(exported) >= {
        "STATE_KEY", "EmulatorConfig", "EmulatorState", "RunningEmulator", "create_app",
        "emulator_in_thread", "run_emulator", "running_emulator",
    }  # fmt: skip
    for name in exported:
        assert getattr(bulkchime.emulator, name).__doc__, name


def test_emulator_in_thread_serves_a_sync_client() -> None:
    with emulator_in_thread(EmulatorConfig(users_per_account=10)) as emulator:
        client = botocore.session.get_session().create_client(
            "chime",
            region_name="us-east-1",
            endpoint_url=emulator.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"total_max_attempts": 1}),
        )
        try:
            account = emulator.state.account_ids()[0]
            ids = [u.user_id for u in emulator.state.users(account)[:3]]
            answer = client.batch_suspend_user(AccountId=account, UserIdList=ids)
            assert answer["UserErrors"] == []
            emulator.configure(error_rate=1.0)  # from this thread, run on the emulator's loop
            with pytest.raises(client.exceptions.ClientError) as info:
                client.list_accounts()
            assert info.value.response["Error"]["Code"] in (
                "ServiceFailureException",
                "ServiceUnavailableException",
            )
            stats = emulator.stats()
            assert stats["effects"]["BatchSuspendUser"] == {"total": 3, "distinct": 3}
            assert stats["faults"] == 1
        finally:
            client.close()
    host, port = emulator.url.removeprefix("http://").split(":")
    with pytest.raises(ConnectionRefusedError):  # stopped, and the thread is gone
        socket.create_connection((host, int(port)), timeout=2).close()
    assert not [t for t in threading.enumerate() if t.name == "bulkchime-emulator"]


def test_emulator_in_thread_reports_a_bad_config() -> None:
    with (
        pytest.raises(ValueError, match="error_rate"),
        emulator_in_thread(EmulatorConfig(error_rate=3)),
    ):
        pass  # pragma: no cover


def test_run_emulator_prints_the_address_first_and_stops_on_sigterm() -> None:
    code = (
        "from bulkchime.emulator import run_emulator, EmulatorConfig; "
        "run_emulator(EmulatorConfig(accounts=1, users_per_account=5))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=python_env(),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().rstrip("\n")
        assert line.startswith("listening on http://127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1])
        assert port > 0
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_emulator/stats", timeout=5) as r:
            assert json.load(r)["requests"]["ListAccounts"] == 0
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
        assert process.returncode == 0, err
        assert out == "" and "Traceback" not in err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def aws(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the AWS CLI with the emulator's keys and no profile of this machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return subprocess.run(
        ["aws", "chime", *args, "--region", "us-east-1", "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI (aws) is not on PATH")
def test_aws_cli_lists_pages_and_suspends() -> None:
    with emulator_in_thread(EmulatorConfig(users_per_account=120)) as emulator:
        endpoint = ("--endpoint-url", emulator.url)
        listed = aws("list-accounts", *endpoint)
        assert listed.returncode == 0, listed.stderr
        accounts = json.loads(listed.stdout)["Accounts"]
        assert [a["Name"] for a in accounts] == ["Example Corp 1", "Example Corp 2"]
        account = accounts[0]["AccountId"]
        # The CLI follows NextToken by itself: 120 users in pages of 50.
        users = aws("list-users", "--account-id", account, "--page-size", "50", *endpoint)
        assert users.returncode == 0, users.stderr
        assert len(json.loads(users.stdout)["Users"]) == 120
        ids = [u.user_id for u in emulator.state.users(account)[:2]]
        suspended = aws("batch-suspend-user", "--account-id", account, "--user-id-list", *ids,
                        *endpoint)  # fmt: skip
        assert suspended.returncode == 0, suspended.stderr
        assert json.loads(suspended.stdout)["UserErrors"] == []
        assert all(u.registration_status == "Suspended" for u in emulator.state.users(account)[:2])
        stats = emulator.stats()
        assert stats["requests"]["ListUsers"] == 3
        assert stats["effects"]["BatchSuspendUser"] == {"total": 2, "distinct": 2}
        missing = aws("get-account", "--account-id", "no-such-account", *endpoint)
        assert missing.returncode != 0 and "NotFoundException" in missing.stderr

"""Job files as an administrator writes them, and every mistake the loader must name."""

from __future__ import annotations

import os
from pathlib import Path
from textwrap import dedent

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkchime.constants import DEFAULT_CONCURRENCY, DEFAULT_MAX_ATTEMPTS
from bulkchime.errors import InputError
from bulkchime.job import InputSpec, JobSpec, Limits, job_from_dict, load_job

USERS = "email,name\na@example.com,A\n"


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    """A folder holding a users.csv, where the test writes its job file."""
    (tmp_path / "users.csv").write_text(USERS)
    (tmp_path / "licenses.csv").write_text("email,license\na@example.com,Pro\n")
    (tmp_path / "accounts.csv").write_text("account_id,name\nacc-1,New name\n")
    (tmp_path / "account-ids.csv").write_text("account_id\nacc-1\n")
    return tmp_path


def job_file(folder: Path, text: str, name: str = "job.toml") -> Path:
    path = folder / name
    path.write_text(dedent(text).lstrip())
    return path


def load(folder: Path, text: str) -> JobSpec:
    return load_job(job_file(folder, text))


def fails(folder: Path, text: str) -> InputError:
    path = job_file(folder, text)
    with pytest.raises(InputError) as info:
        load_job(path)
    assert info.value.file == str(path)
    assert str(info.value).startswith(str(path))
    return info.value


SUSPEND = """
    action = "suspend"
    account_id = "acc-1"
    [input]
    path = "users.csv"
"""


# --- good jobs ----------------------------------------------------------------------------


def test_minimal_job_gets_defaults(jobs: Path) -> None:
    job = load(jobs, SUSPEND)
    assert job == JobSpec(
        name="job",
        actions=("suspend",),
        input=InputSpec(path=str(jobs / "users.csv"), key="email"),
        account_id="acc-1",
        source=str(jobs / "job.toml"),
    )
    assert job.limits == Limits(concurrency=DEFAULT_CONCURRENCY, max_attempts=DEFAULT_MAX_ATTEMPTS)
    assert job.params == {}


def test_full_job(jobs: Path) -> None:
    job = load(
        jobs,
        """
        name = "migrate-basic-to-pro"
        action = "update-license"
        account_name = "Example Corp 1"
        checkpoint = "state/x.ckpt.sqlite"
        report = "/abs/x.report.csv"

        [input]
        path = "users.csv"
        key = "email"

        [params]
        license = "Pro"

        [limits]
        rate = 10
        burst = 10
        concurrency = 4
        max_attempts = 3
        failure_threshold = 0.05

        [aws]
        region = "eu-central-1"
        endpoint_url = "http://127.0.0.1:8080"
        profile = "admin"
        """,
    )
    assert job.name == "migrate-basic-to-pro"
    assert job.actions == ("update-license",)
    assert job.account_name == "Example Corp 1" and job.account_id is None
    assert job.params == {"license": "Pro"}
    assert job.limits == Limits(
        rate=10.0, burst=10, concurrency=4, max_attempts=3, failure_threshold=0.05
    )
    assert isinstance(job.limits.rate, float)
    assert (job.region, job.endpoint_url, job.profile) == (
        "eu-central-1",
        "http://127.0.0.1:8080",
        "admin",
    )
    assert job.checkpoint == str(jobs / "state" / "x.ckpt.sqlite")
    assert job.report == "/abs/x.report.csv"


def test_paths_are_relative_to_the_job_file(jobs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (jobs / "sub").mkdir()
    job_file(jobs / "sub", SUSPEND.replace('"users.csv"', '"../users.csv"'))
    monkeypatch.chdir(jobs)
    job = load_job(os.path.join("sub", "job.toml"))
    assert job.input.path == os.path.join("sub", "..", "users.csv")
    assert job.source == os.path.join("sub", "job.toml")


def test_stdin_path_is_kept(jobs: Path) -> None:
    job = load(jobs, SUSPEND.replace('"users.csv"', '"-"'))
    assert job.input.path == "-"


def test_phases_and_key(jobs: Path) -> None:
    job = load(
        jobs,
        """
        action = ["logout", "suspend"]
        [input]
        path = "users.csv"
        key = "user_id"
        """,
    )
    assert job.actions == ("logout", "suspend")
    assert job.input.key == "user_id"
    assert job.account_id is None  # the rows may carry their own account_id


def test_default_key_is_the_first_actions_first_key(jobs: Path) -> None:
    job = load(jobs, 'action = "delete-account"\n[input]\npath = "account-ids.csv"\n')
    assert job.input.key == "account_id"


def test_query_input(jobs: Path) -> None:
    job = load(
        jobs,
        """
        action = "update-license"
        account_id = "acc-1"
        [input]
        query = { license = "Basic", registration_status = "Registered" }
        [params]
        license = "Pro"
        """,
    )
    assert job.input == InputSpec(
        path=None, key="email", query={"license": "Basic", "registration_status": "Registered"}
    )


def test_shared_devices_are_selected_and_changed(jobs: Path) -> None:
    job = load(
        jobs,
        """
        action = "update-user"
        account_id = "acc-1"
        [input]
        query = { user_type = "SharedDevice" }
        [params]
        user_type = "PrivateUser"
        license = "Basic"
        """,
    )
    assert job.input.query == {"user_type": "SharedDevice"}
    assert job.params == {"user_type": "PrivateUser", "license": "Basic"}
    job = job_from_dict(
        {"action": "suspend", "account_id": "a", "input": {"query": {"user_type": "PrivateUser"}}}
    )
    assert job.input.query == {"user_type": "PrivateUser"}


def test_update_account_takes_a_name_or_a_default_license(jobs: Path) -> None:
    text = 'action = "update-account"\naccount_id = "acc-1"\n[params]\n'
    assert load(jobs, text + 'default_license = "Basic"\n').params == {"default_license": "Basic"}
    both = load(jobs, text + 'default_license = "Pro"\nname = "New"\n').params
    assert both == {"default_license": "Pro", "name": "New"}
    err = fails(jobs, text)
    assert err.field == "params.name"
    assert "update-account needs a name or a default_license" in str(err)


def test_export_reads_the_whole_account(jobs: Path) -> None:
    job = load(jobs, 'action = "export-users"\naccount_id = "acc-1"\n')
    assert job.input == InputSpec(path=None, key="email", query=None)
    job = load(
        jobs,
        'action = "export-users"\naccount_id = "acc-1"\n'
        '[input]\nquery = { invitation_status = "Pending" }\n',
    )
    assert job.input.query == {"invitation_status": "Pending"}


def test_required_param_may_be_a_column(jobs: Path) -> None:
    job = load(jobs, 'action = "update-license"\n[input]\npath = "licenses.csv"\n')
    assert job.params == {}
    job = load(jobs, 'action = "update-account"\n[input]\npath = "accounts.csv"\n')
    assert job.params == {}


def test_required_param_is_not_checked_against_stdin(jobs: Path) -> None:
    job = load(jobs, 'action = "update-license"\n[input]\npath = "-"\n')
    assert job.params == {}


def test_settings_params(jobs: Path) -> None:
    job = load(
        jobs,
        """
        action = "update-settings"
        [input]
        path = "account-ids.csv"
        [params]
        disable_remote_control = true
        enable_dial_out = false
        """,
    )
    assert job.params == {"disable_remote_control": True, "enable_dial_out": False}


def test_bom_and_dotted_keys(jobs: Path) -> None:
    path = jobs / "job.toml"
    path.write_bytes(b'\xef\xbb\xbfaction = "suspend"\r\ninput.path = "users.csv"\r\n')
    assert load_job(path).input.path == str(jobs / "users.csv")


# --- job-level errors ---------------------------------------------------------------------


def test_missing_job_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(InputError) as info:
        load_job(path)
    assert str(info.value).startswith(f"{path}: cannot read the job file: No such file")
    with pytest.raises(InputError, match="cannot read the job file"):
        load_job(tmp_path)


def test_job_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "job.toml"
    path.write_bytes(b'action = "suspend"\nname = "caf\xe9"\n')
    with pytest.raises(InputError) as info:
        load_job(path)
    assert str(info.value).startswith(f"{path}:2: is not UTF-8 text")


def test_toml_syntax_error_names_the_line(jobs: Path) -> None:
    err = fails(jobs, 'action = "suspend"\n\n[input]\npath = users.csv\n')
    assert err.line == 4
    assert "is not valid TOML" in str(err) and "(column" in str(err)
    assert "(at line" not in str(err)


def test_toml_error_at_end_of_document(jobs: Path) -> None:
    err = fails(jobs, 'action = "suspend"\n[input\n')
    assert err.line is not None


@pytest.mark.parametrize(
    ("text", "field", "line", "words"),
    [
        ('actions = "suspend"\n', "actions", 1, ["unknown key", "did you mean 'action'"]),
        (SUSPEND + "[limits]\nrat = 5\n", "limits.rat", 6, ["did you mean 'rate'", "burst"]),
        (SUSPEND + "colour = 1\n", "input.colour", 5, ["allowed keys in [input]: path"]),
        (SUSPEND + "[aws]\nregion = 'x'\nkey = 'y'\n", "aws.key", 7, ["endpoint_url"]),
        (SUSPEND + "[extra]\nx = 1\n", "extra", 5, ["unknown section", "[limits]"]),
        (SUSPEND + "[[extra]]\nx = 1\n", "extra", 5, ["unknown section", "[aws]"]),
        ('limits = 3\naction = "suspend"\n', "limits", 1, ["must be a table"]),
    ],
)
def test_unknown_keys_and_sections(
    jobs: Path, text: str, field: str, line: int, words: list[str]
) -> None:
    err = fails(jobs, text)
    assert (err.field, err.line) == (field, line)
    for word in words:
        assert word in str(err)


@pytest.mark.parametrize(
    ("action", "words"),
    [
        ('"suspnd"', ["unknown action 'suspnd'", "known actions:", "suspend"]),
        ("[]", ["non-empty list"]),
        ('["logout", "logout"]', ["'logout' twice"]),
        ('["export-users", "suspend"]', ["cannot be combined"]),
        ("3", ["must be an action name"]),
        ("[3]", ["as strings"]),
    ],
)
def test_bad_actions(jobs: Path, action: str, words: list[str]) -> None:
    err = fails(jobs, f'account_id = "acc-1"\naction = {action}\n[input]\npath = "users.csv"\n')
    assert (err.field, err.line) == ("action", 2)
    for word in words:
        assert word in str(err)


def test_missing_action(jobs: Path) -> None:
    err = fails(jobs, '[input]\npath = "users.csv"\n')
    assert err.field == "action" and "is missing" in str(err)


def test_account_id_and_account_name(jobs: Path) -> None:
    err = fails(
        jobs, SUSPEND.replace('account_id = "acc-1"', 'account_id = "a"\naccount_name = "b"')
    )
    assert (err.field, err.line) == ("account_name", 3)
    assert "not both" in str(err)
    err = fails(jobs, SUSPEND.replace('"acc-1"', '"acc 1"'))
    assert err.field == "account_id" and "spaces" in str(err)
    err = fails(jobs, SUSPEND.replace('"acc-1"', '""'))
    assert err.field == "account_id" and "non-empty string" in str(err)


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        (
            'action = "suspend"\naccount_id = "a"\n[input]\npath = "users.csv"\n'
            'query = { license = "Basic" }\n',
            "input.query",
            ["not both"],
        ),
        ('action = "suspend"\n[input]\nkey = "email"\n', "input.path", ["is missing"]),
        ('action = "suspend"\n', "input.path", ["is missing"]),
        ('action = "export-users"\n', "account_id", ["reads an account"]),
        (
            'action = "export-users"\naccount_id = "a"\n[input]\npath = "users.csv"\n',
            "input.path",
            ["not from a file"],
        ),
        (
            'action = "suspend"\n[input]\nquery = { license = "Basic" }\n',
            "input.query",
            ["no account is given"],
        ),
        (
            'action = "delete-account"\naccount_id = "a"\n[input]\nquery = { license = "Basic" }\n',
            "input.query",
            ["acts on accounts"],
        ),
        (
            'action = "suspend"\naccount_id = "a"\n[input]\nquery = { colour = "red" }\n',
            "input.query.colour",
            ["unknown filter", "registration_status"],
        ),
        (
            'action = "suspend"\naccount_id = "a"\n[input]\nquery = { license = "basic" }\n',
            "input.query.license",
            ["got 'basic'", "did you mean 'Basic'"],
        ),
        (
            'action = "suspend"\naccount_id = "a"\n[input]\n'
            'query = { registration_status = "Active" }\n',
            "input.query.registration_status",
            ["Unregistered, Registered, Suspended"],
        ),
        (
            'action = "suspend"\naccount_id = "a"\n[input]\nquery = { user_type = "Bogus" }\n',
            "input.query.user_type",
            ["PrivateUser, SharedDevice", "got 'Bogus'"],
        ),
        (
            'action = "suspend"\naccount_id = "a"\n[input]\nquery = {}\n',
            "input.query",
            ["every user"],
        ),
        (
            'action = "suspend"\naccount_id = "a"\n[input]\nquery = "all"\n',
            "input.query",
            ["must be a table"],
        ),
        ('action = "suspend"\n[input]\npath = "users.csv"\nkey = "mail"\n', "input.key", ["mail"]),
        (
            'action = "invite"\n[input]\npath = "users.csv"\nkey = "user_id"\n',
            "input.key",
            ["invite cannot use the key 'user_id'", "invite takes email"],
        ),
        (
            'action = ["logout", "invite"]\n[input]\npath = "users.csv"\nkey = "user_id"\n',
            "input.key",
            ["invite cannot use"],
        ),
        (
            'action = "delete-account"\n[input]\npath = "users.csv"\nkey = "email"\n',
            "input.key",
            ["delete-account takes account_id"],
        ),
    ],
)
def test_bad_inputs(jobs: Path, text: str, field: str, words: list[str]) -> None:
    err = fails(jobs, text)
    assert err.field == field
    for word in words:
        assert word in str(err)


def test_error_lines_inside_inline_tables(jobs: Path) -> None:
    err = fails(
        jobs, 'action = "suspend"\naccount_id = "a"\n\ninput = { query = { license = "x" } }\n'
    )
    assert (err.field, err.line) == ("input.query.license", 4)


def test_missing_required_param_names_field_and_action(jobs: Path) -> None:
    err = fails(jobs, 'action = "update-license"\n[input]\npath = "users.csv"\n')
    assert err.field == "params.license"
    assert "update-license needs a license" in str(err)
    assert "params.license: is missing" in str(err)
    err = fails(jobs, 'action = "update-license"\n[input]\npath = "missing.csv"\n')
    assert err.field == "params.license"
    err = fails(jobs, 'action = "update-account"\n[input]\npath = "account-ids.csv"\n')
    assert err.field == "params.name" and "update-account" in str(err)
    err = fails(
        jobs,
        'action = "update-license"\naccount_id = "a"\n[input]\nquery = { license = "Basic" }\n'
        "[params]\n",
    )
    assert (err.field, err.line) == ("params.license", 5)


@pytest.mark.parametrize(
    ("action", "params", "field", "words"),
    [
        ("update-license", 'license = "Enterprise"', "params.license", ["Basic, Plus, Pro"]),
        ("update-license", 'license = "pro"', "params.license", ["did you mean 'Pro'"]),
        ("update-license", "license = 3", "params.license", ["got 3"]),
        ("update-license", 'license = "Pro"\nlicence = "Pro"', "params.licence", ["'license'"]),
        ("suspend", 'license = "Pro"', "params.license", ["suspend takes no parameters"]),
        ("update-settings", 'enable_dial_out = "yes"', "params.enable_dial_out", ["true or false"]),
        ("update-account", 'name = ""', "params.name", ["1 to 100"]),
        ("update-account", 'default_license = "Gold"', "params.default_license", ["Basic, Plus"]),
        ("update-user", 'user_type = "sharedDevice"', "params.user_type", ["'SharedDevice'"]),
        ("update-license", 'license = "Pro"\nuser_type = "SharedDevice"', "params.user_type", []),
    ],
)
def test_bad_params(jobs: Path, action: str, params: str, field: str, words: list[str]) -> None:
    source = "account-ids.csv" if "account" in action or "settings" in action else "users.csv"
    err = fails(jobs, f'action = "{action}"\n[input]\npath = "{source}"\n[params]\n{params}\n')
    assert err.field == field
    assert err.line is not None and err.line >= 5
    for word in words:
        assert word in str(err)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("rate", "-1", "must be a number > 0, got -1"),
        ("rate", "0", "must be a number > 0, got 0"),
        ("rate", "0.0", "must be a number > 0, got 0.0"),
        ("rate", "true", "must be a number > 0, got true"),
        ("rate", '"fast"', "must be a number > 0, got 'fast'"),
        ("rate", "inf", "must be a number > 0, got inf"),
        ("rate", "nan", "must be a number > 0, got nan"),
        ("burst", "0", "must be a whole number >= 1, got 0"),
        ("burst", "2.5", "must be a whole number >= 1, got 2.5"),
        ("concurrency", "-3", "must be a whole number >= 1, got -3"),
        ("max_attempts", "false", "must be a whole number >= 1, got false"),
        ("failure_threshold", "0", "must be a number > 0 and <= 1, got 0"),
        ("failure_threshold", "1.5", "must be a number > 0 and <= 1, got 1.5"),
    ],
)
def test_bad_limits(jobs: Path, name: str, value: str, message: str) -> None:
    path = job_file(jobs, SUSPEND + f"\n[limits]\n# how fast\n{name} = {value}\n")
    with pytest.raises(InputError) as info:
        load_job(path)
    lines = path.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if text.startswith(f"{name} ="))
    assert str(info.value).startswith(f"{path}:{line}: limits.{name}: {message}")
    assert "HINT" in str(info.value)


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("endpoint_url", '"127.0.0.1:8080"', "aws.endpoint_url"),
        ("endpoint_url", '"ftp://x"', "aws.endpoint_url"),
        ("region", '"us east"', "aws.region"),
        ("profile", "1", "aws.profile"),
    ],
)
def test_bad_aws(jobs: Path, key: str, value: str, field: str) -> None:
    err = fails(jobs, SUSPEND + f"[aws]\n{key} = {value}\n")
    assert (err.field, err.line) == (field, 6)


@pytest.mark.parametrize("name", ['"a/b"', '".."', '""', "1"])
def test_bad_name(jobs: Path, name: str) -> None:
    err = fails(jobs, f"name = {name}\n" + SUSPEND)
    assert (err.field, err.line) == ("name", 1)


# --- overrides and jobs from options ------------------------------------------------------


def test_with_overrides(jobs: Path) -> None:
    job = load(jobs, SUSPEND + "[limits]\nrate = 5.0\nconcurrency = 2\n")
    changed = job.with_overrides(rate=20, max_attempts=3, report="out.csv")
    assert changed.limits == Limits(rate=20.0, concurrency=2, max_attempts=3)
    assert changed.report == "out.csv"
    assert changed.endpoint_url is None
    assert job.with_overrides() == job


@pytest.mark.parametrize(
    ("option", "value", "field"),
    [
        ("rate", -1, "--rate"),
        ("burst", 0, "--burst"),
        ("max_attempts", True, "--max-attempts"),
        ("failure_threshold", 2.0, "--failure-threshold"),
        ("endpoint_url", "localhost:1", "--endpoint-url"),
    ],
)
def test_with_overrides_checks_values(jobs: Path, option: str, value: object, field: str) -> None:
    job = load(jobs, SUSPEND)
    with pytest.raises(InputError) as info:
        job.with_overrides(**{option: value})  # type: ignore[arg-type]
    assert info.value.field == field
    assert str(info.value).startswith(f"<command line>: {field}: ")


def test_limits_refuse_bad_values() -> None:
    with pytest.raises(ValueError, match="rate: must be a number > 0"):
        Limits(rate=0)
    with pytest.raises(ValueError, match="concurrency"):
        Limits(concurrency=0)


def test_job_from_dict(jobs: Path) -> None:
    job = job_from_dict(
        {
            "action": "update-license",
            "account_id": "acc-1",
            "input": {"path": "users.csv"},
            "params": {"license": "Plus"},
        },
        base_dir=str(jobs),
    )
    assert job.name == "update-license-users"
    assert job.input.path == str(jobs / "users.csv")
    assert job.source is None
    assert job_from_dict({"action": "suspend", "input": {"path": "-"}}).name == "suspend-stdin"
    with pytest.raises(InputError) as info:
        job_from_dict({"action": "suspend", "input": {"path": "x.csv", "key": "name"}})
    assert str(info.value).startswith("<command line>: --key: suspend cannot use the key")


@given(rate=st.floats(allow_nan=True, allow_infinity=True) | st.integers())
def test_rate_is_accepted_exactly_when_positive_and_finite(rate: float) -> None:
    ok = 0 < rate < float("inf")
    try:
        limits = Limits(rate=rate)
    except ValueError:
        assert not ok
    else:
        assert ok and limits.rate == rate

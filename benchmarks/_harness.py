"""What every benchmark shares: an emulator in its own process, the engine as a user runs it.

Nothing here is timed by the test suite. Each helper bounds its own run time: the
emulator and the engine are subprocesses killed when they overstay, every wait has
a deadline, and everything talks over loopback only. Credentials are the
emulator's test keys; nothing is read from the machine's own AWS set-up.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import platform
import select
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = [
    "ENGINE_CODE_VARIABLE",
    "RESULTS",
    "FIGURES",
    "EmulatorProcess",
    "EngineRun",
    "PROCESS",
    "StatsPoller",
    "bench_env",
    "engine_command",
    "machine",
    "print_table",
    "read_column",
    "read_engine_log",
    "run_engine",
    "slice_csv",
    "use_bench_env",
    "user_ids_csv",
    "write_result",
]

ROOT = Path(__file__).resolve().parent.parent
#: Raw results and plots of the latest runs (git-ignored).
RESULTS = ROOT / "benchmarks" / "results"
#: Small committed copies of the plots the README shows.
FIGURES = ROOT / "benchmarks" / "figures"

_BULKCHIME = "from bulkchime.cli import main; main()"

#: A checkout whose ``bulkchime`` the engine runs instead of this one (benchmarks.compare).
ENGINE_CODE_VARIABLE = "BULKCHIME_BENCH_ENGINE_CODE"

#: Run first in the engine's process: at exit, write its VmHWM (peak RSS, kB) where
#: BULKCHIME_BENCH_HWM says. ``ru_maxrss`` from ``wait4`` cannot be used: Linux carries
#: the parent's RSS at fork over into the child's figure, so a benchmark process that
#: has loaded matplotlib would inflate the engine's peak by tens of MB.
_RECORD_HWM = """
import atexit, os
def _record_hwm():
    target = os.environ.get("BULKCHIME_BENCH_HWM")
    if target:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    with open(target, "w") as out:
                        out.write(line.split()[1])
atexit.register(_record_hwm)
"""


def bench_env() -> dict[str, str]:
    """The environment of every subprocess: the emulator's test keys and nothing else of AWS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    return env


def use_bench_env() -> None:
    """Apply :func:`bench_env` to this process (for in-process boto3 / aiobotocore peers)."""
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update({k: v for k, v in bench_env().items() if k.startswith("AWS_")})


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "date": datetime.now().isoformat(timespec="seconds"),
    }


# -- the emulator --------------------------------------------------------------------------


class EmulatorProcess:
    """``bulkchime emulator`` in its own process; stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(
        self,
        *,
        users: int = 100,
        accounts: int = 1,
        rate: float = 0.0,
        burst: int = 0,
        latency_ms: float = 0.0,
        seed: int = 0,
        start_timeout: float = 120.0,
    ) -> None:
        self.args = [
            "--port", "0", "--accounts", str(accounts), "--users-per-account", str(users),
            "--seed", str(seed), "--rate", str(rate), "--burst", str(burst),
            "--latency-ms", str(latency_ms),
        ]  # fmt: skip
        self.start_timeout = start_timeout
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr = tempfile.TemporaryFile()

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def __enter__(self) -> EmulatorProcess:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _BULKCHIME, "emulator", *self.args],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=bench_env(),
        )
        assert self._process.stdout is not None
        deadline = time.monotonic() + self.start_timeout
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self._process.stdout], [], [], max(remaining, 0))
            if not ready:
                self.__exit__(None, None, None)
                raise TimeoutError(f"emulator did not start in {self.start_timeout:.0f} s")
            chunk = os.read(self._process.stdout.fileno(), 1)
            if not chunk:
                self._stderr.seek(0)
                raise RuntimeError(f"emulator exited: {self._stderr.read().decode()[-2000:]}")
            line += chunk
        text = line.decode().strip()
        if not text.startswith("listening on "):
            raise RuntimeError(f"unexpected first line from the emulator: {text!r}")
        self.url = text.removeprefix("listening on ")
        return self

    def __exit__(self, *exc_info: object) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        self._stderr.close()

    def stats(self) -> dict[str, Any]:
        """``GET /_emulator/stats``."""
        with urllib.request.urlopen(self.url + "/_emulator/stats", timeout=10) as response:
            return dict(json.load(response))

    def configure(self, **changes: float) -> dict[str, Any]:
        """``POST /_emulator/config`` (a rate or burst change also refills the server's bucket)."""
        request = urllib.request.Request(
            self.url + "/_emulator/config",
            data=json.dumps(changes).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.load(response))

    def cpu_seconds(self) -> float:
        """User + system CPU the emulator has used so far."""
        import psutil  # type: ignore[import-untyped]

        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)


@dataclass
class Sample:
    """One poll of the emulator's counters."""

    t: float
    requests: int
    throttled: int


class StatsPoller:
    """Polls the emulator's stats from a thread: the server's view of the rate over time."""

    def __init__(self, emulator: EmulatorProcess, operation: str, interval: float = 0.1) -> None:
        self.emulator = emulator
        self.operation = operation
        self.interval = interval
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stats-poller", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                stats = self.emulator.stats()
            except OSError:
                stats = None
            if stats is not None:
                self.samples.append(
                    Sample(time.time(), stats["requests"][self.operation], stats["throttled"])
                )
            self._stop.wait(self.interval)

    def __enter__(self) -> StatsPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


# -- inputs --------------------------------------------------------------------------------


_WRITE_IDS = """
import csv, sys
from bulkchime.emulator import STATE_KEY, EmulatorConfig, create_app
users, accounts, seed, path, key = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), \
    sys.argv[4], sys.argv[5]
state = create_app(EmulatorConfig(accounts=accounts, users_per_account=users, seed=seed))[STATE_KEY]
with open(path, "w", newline="") as out:
    writer = csv.writer(out)
    writer.writerow(["account_id", key])
    for account_id in state.account_ids():
        for user in state.users(account_id):
            writer.writerow([account_id, user.user_id if key == "user_id" else user.primary_email])
"""


def user_ids_csv(
    users: int, *, accounts: int = 1, seed: int = 0, key: str = "user_id"
) -> tuple[list[str], Path]:
    """The account ids and a CSV (``account_id,<key>``) of every seeded user, cached.

    An emulator with the same seed and sizes seeds the same ids; they are generated in
    a child process so that the benchmark itself never holds a million users.
    """
    cache = RESULTS / "inputs"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"users-{accounts}x{users}-seed{seed}-{key}.csv"
    if not path.exists():
        partial = path.with_suffix(".partial")
        subprocess.run(
            [sys.executable, "-c", _WRITE_IDS, str(users), str(accounts), str(seed),
             str(partial), key],
            check=True, env=bench_env(), timeout=600,
        )  # fmt: skip
        partial.rename(path)
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        account_ids: list[str] = []
        for row in reader:
            if not account_ids or account_ids[-1] != row[0]:
                account_ids.append(row[0])
            if len(account_ids) == accounts:
                break
    return account_ids, path


def slice_csv(
    source: Path, target: Path, rows: int, *, skip: int = 0, key: str = "user_id"
) -> Path:
    """The key column of rows ``skip .. skip+rows`` of *source*, as a one-column CSV."""
    with source.open(newline="") as handle, target.open("w", newline="") as out:
        reader = csv.reader(handle)
        header = next(reader)
        column = header.index(key)
        out.write(key + "\n")
        for index, row in enumerate(reader):
            if index < skip:
                continue
            if index >= skip + rows:
                break
            out.write(row[column] + "\n")
    return target


def read_column(source: Path, rows: int, *, skip: int = 0, key: str = "user_id") -> list[str]:
    """Rows ``skip .. skip+rows`` of *source*'s *key* column (for in-process peers)."""
    with source.open(newline="") as handle:
        reader = csv.reader(handle)
        column = next(reader).index(key)
        out = []
        for index, row in enumerate(reader):
            if index >= skip + rows:
                break
            if index >= skip:
                out.append(row[column])
    return out


# -- the engine ----------------------------------------------------------------------------


def engine_command(args: Sequence[str], *, profile_to: Path | None = None) -> list[str]:
    """``bulkchime ARGS`` as a subprocess command line (optionally under cProfile)."""
    if profile_to is None:
        return [sys.executable, "-c", _RECORD_HWM + _BULKCHIME, *args]
    code = _RECORD_HWM + (
        "import cProfile, sys; from bulkchime.cli import main\n"
        f"sys.argv = ['bulkchime', *sys.argv[1:]]\n"
        f"cProfile.run('main()', {str(profile_to)!r})\n"
    )
    return [sys.executable, "-c", code, *args]


@dataclass
class EngineRun:
    """How one engine process went."""

    returncode: int
    wall_seconds: float
    #: Peak resident set: the process's own VmHWM, read by it at exit (the kernel's
    #: high-water mark of its memory since it started).
    peak_rss_mb: float
    user_cpu: float
    system_cpu: float
    stdout: str
    log_path: Path
    summary: dict[str, Any]
    #: ``(seconds since start, RSS MB)`` polled while it ran.
    rss_series: list[tuple[float, float]] = field(default_factory=list)
    #: CPU seconds per thread (the main thread's id is the pid), last polled values.
    thread_cpu: dict[int, float] = field(default_factory=dict)
    #: ``(epoch seconds, {thread id: CPU seconds})`` polled while it ran.
    thread_series: list[tuple[float, dict[int, float]]] = field(default_factory=list)
    pid: int = 0
    #: Epoch seconds when the process was started (log timestamps are epoch seconds too).
    started_at: float = 0.0
    timed_out: bool = False

    @property
    def cpu_seconds(self) -> float:
        return self.user_cpu + self.system_cpu


def run_engine(
    args: Sequence[str],
    *,
    workdir: Path,
    timeout: float,
    profile_to: Path | None = None,
    rss_interval: float = 0.25,
) -> EngineRun:
    """Run ``bulkchime ARGS`` in *workdir*; JSON logs to a file, summary via --summary-json.

    The process is killed after *timeout* seconds (the run then reports ``timed_out``).
    """
    import psutil

    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "engine.log.jsonl"
    summary_path = workdir / "summary.json"
    summary_path.unlink(missing_ok=True)
    hwm_path = workdir / "engine.vmhwm"
    hwm_path.unlink(missing_ok=True)
    env = {**bench_env(), "BULKCHIME_BENCH_HWM": str(hwm_path)}
    other = os.environ.get(ENGINE_CODE_VARIABLE)
    if other:  # benchmarks.compare: run another version's engine against the same emulator
        env["PYTHONPATH"] = other + os.pathsep + env["PYTHONPATH"]
    command = engine_command(
        [*args, "--log-format", "json", "--summary-json", str(summary_path)],
        profile_to=profile_to,
    )
    with log_path.open("wb") as log, tempfile.TemporaryFile() as out:
        started_at = time.time()
        start = time.monotonic()
        process = subprocess.Popen(command, cwd=workdir, stdout=out, stderr=log, env=env)
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                process.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        series: list[tuple[float, float]] = []
        done = threading.Event()

        threads: dict[int, float] = {}
        thread_series: list[tuple[float, dict[int, float]]] = []

        def poll_rss() -> None:
            with contextlib.suppress(psutil.Error):
                watched = psutil.Process(process.pid)
                while not done.wait(rss_interval):
                    series.append((time.monotonic() - start, watched.memory_info().rss / 2**20))
                    now = _thread_cpu(process.pid)
                    threads.update(now)
                    thread_series.append((time.time(), now))

        poller = threading.Thread(target=poll_rss, daemon=True)
        poller.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            done.set()
            timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - start
        poller.join(timeout=5)
        out.seek(0)
        stdout = out.read().decode(errors="replace")
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    polled_peak = max((mb for _, mb in series), default=0.0)
    try:
        peak = int(hwm_path.read_text()) / 1024
    except (OSError, ValueError):  # killed before its exit handlers ran
        peak = polled_peak
    return EngineRun(
        returncode=process.returncode,
        wall_seconds=wall,
        peak_rss_mb=max(peak, polled_peak),
        user_cpu=usage.ru_utime,
        system_cpu=usage.ru_stime,
        stdout=stdout,
        log_path=log_path,
        summary=summary,
        rss_series=series,
        thread_cpu=threads,
        thread_series=thread_series,
        pid=process.pid,
        started_at=started_at,
        timed_out=timed_out.is_set(),
    )


#: Key of the whole process (every thread, ended ones included) in :func:`_thread_cpu`.
PROCESS = -1


def _thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each live thread of *pid*, and of the whole
    process under :data:`PROCESS`, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}

    def read(path: str) -> float:
        with open(path) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    with contextlib.suppress(OSError, ValueError, IndexError):
        out[PROCESS] = read(f"/proc/{pid}/stat")
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                out[int(tid)] = read(f"/proc/{pid}/task/{tid}/stat")
    return out


def read_engine_log(path: Path) -> Iterator[dict[str, Any]]:
    """The engine's JSON log events, each with ``t`` (epoch seconds) added."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.startswith("{"):
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            stamp = event.get("timestamp")
            if stamp:
                event["t"] = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
            yield event


# -- output --------------------------------------------------------------------------------


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Print (and return) a Markdown table, the form the README pastes."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
        return str(value)

    lines = [f"### {title}", "", "| " + " | ".join(columns) + " |"]
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    lines.extend("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    return text


def write_result(name: str, data: dict[str, Any]) -> Path:
    """``benchmarks/results/NAME.json`` with the machine it was measured on."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2, default=str) + "\n")
    return path

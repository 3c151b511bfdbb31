"""Serving the emulator: in the current loop, from a thread, or as a blocking program."""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import signal
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any, Final, TypeVar

from aiohttp import web

from ._app import Emulator, create_app, emulator_of
from ._config import EmulatorConfig
from ._state import EmulatorState

__all__ = ["RunningEmulator", "emulator_in_thread", "run_emulator", "running_emulator"]

_T = TypeVar("_T")
#: How long a stopping server waits for requests in flight.
SHUTDOWN_TIMEOUT_S: Final = 5.0
#: aiohttp's own limit on the request line: far above :data:`MAX_URI_BYTES`, so that an
#: overlong URI gets the model's 400 BadRequest from the emulator, not aiohttp's plain text.
REQUEST_LINE_LIMIT_BYTES: Final = 1_048_576


class RunningEmulator:
    """An emulator that is serving: its address, state and configuration.

    :meth:`stats` and :meth:`configure` are safe to call from any thread: when the
    emulator serves from another thread's loop they run on that loop.
    """

    def __init__(self, url: str, emulator: Emulator, loop: asyncio.AbstractEventLoop) -> None:
        #: ``http://HOST:PORT``, to use as ``endpoint_url``.
        self.url = url
        #: The accounts and users, for direct typed reads.
        self.state: EmulatorState = emulator.state
        #: The live configuration (``configure`` changes it).
        self.config: EmulatorConfig = emulator.config
        self._emulator = emulator
        self._loop = loop

    def __repr__(self) -> str:
        return f"<RunningEmulator {self.url} {self.state!r}>"

    def stats(self) -> dict[str, Any]:
        """The same JSON document as ``GET /_emulator/stats``."""
        return self._call(self._emulator.stats.snapshot)

    def configure(self, **changes: float | Sequence[str]) -> None:
        """Change fault injection live, as ``POST /_emulator/config`` does.

        Any of ``rate``, ``burst``, ``error_rate``, ``user_error_rate``,
        ``latency_ms`` (numbers) and ``session_tokens``, ``forbidden_accounts``
        (lists of strings); raises ValueError for an unknown setting or a bad value.
        """
        self._call(lambda: self._emulator.configure(dict(changes)))

    def _call(self, function: Callable[[], _T]) -> _T:
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is self._loop or not self._loop.is_running():
            return function()
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(function())
            except BaseException as exc:  # handed to the calling thread
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return future.result(timeout=30)


def _bind(host: str, port: int) -> socket.socket:
    """A bound TCP socket (its port known before serving starts)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@asynccontextmanager
async def running_emulator(config: EmulatorConfig | None = None) -> AsyncIterator[RunningEmulator]:
    """Serve an emulator in the current event loop until the block exits.

    The socket listens before the block starts; on exit requests in flight get
    a few seconds to finish, then everything is closed.
    """
    app = create_app(config or EmulatorConfig())
    emulator = emulator_of(app)
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        max_line_size=REQUEST_LINE_LIMIT_BYTES,
        auto_decompress=False,  # compressed bodies are refused with the model's 400
    )
    await runner.setup()
    try:
        sock = _bind(emulator.config.host, emulator.config.port)
        site = web.SockSite(runner, sock)
        try:
            await site.start()
        except BaseException:
            sock.close()
            raise
        port = sock.getsockname()[1]
        yield RunningEmulator(
            _url(emulator.config.host, port), emulator, asyncio.get_running_loop()
        )
    finally:
        await runner.cleanup()


@contextmanager
def emulator_in_thread(config: EmulatorConfig | None = None) -> Iterator[RunningEmulator]:
    """Serve an emulator from a daemon thread with its own event loop.

    For code that runs its own loop (a CLI calling ``asyncio.run``) or a subprocess.
    The emulator stops, and the thread ends, when the block exits.
    """
    started: queue.Queue[tuple[RunningEmulator, asyncio.Event] | BaseException] = queue.Queue()

    async def serve() -> None:
        stop = asyncio.Event()
        try:
            async with running_emulator(config) as running:
                started.put((running, stop))
                await stop.wait()
        except BaseException as exc:
            started.put(exc)
            raise

    def main() -> None:
        with suppress(BaseException):
            asyncio.run(serve())

    thread = threading.Thread(target=main, name="bulkchime-emulator", daemon=True)
    thread.start()
    while True:  # seeding a large emulator takes a while; a dead thread would never answer
        try:
            outcome = started.get(timeout=0.5)
            break
        except queue.Empty:
            if not thread.is_alive() and started.empty():
                raise RuntimeError("the emulator thread ended before serving") from None
    if isinstance(outcome, BaseException):
        thread.join()
        raise outcome
    running, stop = outcome
    try:
        yield running
    finally:
        with suppress(RuntimeError):  # the loop may have ended already
            running._loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=SHUTDOWN_TIMEOUT_S + 5)


def run_emulator(config: EmulatorConfig) -> None:
    """Serve until SIGINT or SIGTERM, then return.

    The first line on stdout is ``listening on http://HOST:PORT``, printed (and
    flushed) once the socket listens.
    """
    asyncio.run(_serve_until_signalled(config))


async def _serve_until_signalled(config: EmulatorConfig) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError, RuntimeError):  # not on this platform or thread
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
    try:
        async with running_emulator(config) as running:
            print(f"listening on {running.url}", flush=True)
            await stop.wait()
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)

"""The seed service model, loaded once with botocore, and the routes it defines."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Final
from urllib.parse import parse_qsl, unquote

from botocore.model import (  # type: ignore[import-untyped, unused-ignore]
    OperationModel,
    ServiceModel,
)

__all__ = [
    "CONSOLE_PREFIX",
    "OPERATION_NAMES",
    "Route",
    "RouteMatch",
    "match_route",
    "operation_model",
    "routes",
    "service_model",
]

MODEL_FILE: Final = "chime-2018-05-01.json"
#: Where the seed model puts every operation; current SDKs send the same paths without it.
CONSOLE_PREFIX: Final = "/console"


@functools.cache
def service_model() -> ServiceModel:
    """The seed model ``chime-2018-05-01`` shipped beside this module."""
    text = resources.files(__package__).joinpath(MODEL_FILE).read_text(encoding="utf-8")
    return ServiceModel(json.loads(text), service_name="chime")


def operation_model(name: str) -> OperationModel:
    """The model of one operation, by its name (``ListUsers``)."""
    return service_model().operation_model(name)


#: Every operation of the seed model, sorted.
OPERATION_NAMES: Final[tuple[str, ...]] = tuple(sorted(service_model().operation_names))


@dataclass(frozen=True, slots=True)
class Route:
    """One operation's method, path template and the fixed query that tells it apart."""

    operation: str
    method: str
    #: Path segments after the leading slash; ``{name}`` segments are URI labels.
    segments: tuple[str, ...]
    #: Query parameters fixed by the request URI, e.g. ``(("operation", "suspend"),)``.
    static_query: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """A request matched to an operation, with its decoded URI labels and query."""

    route: Route
    labels: dict[str, str]
    query: dict[str, str]


def _routes_of(name: str) -> list[Route]:
    http = operation_model(name).http
    path, _, query = http["requestUri"].partition("?")
    static = tuple(parse_qsl(query, keep_blank_values=True))
    segments = tuple(path.strip("/").split("/"))
    found = [Route(name, http["method"], segments, static)]
    prefix = tuple(CONSOLE_PREFIX.strip("/").split("/"))
    if segments[: len(prefix)] == prefix:
        found.append(Route(name, http["method"], segments[len(prefix) :], static))
    return found


@functools.cache
def routes() -> tuple[Route, ...]:
    """Every route: each operation under ``/console/accounts…`` and ``/accounts…``."""
    return tuple(r for name in OPERATION_NAMES for r in _routes_of(name))


@functools.cache
def _dispatch_keys() -> frozenset[str]:
    """Query keys that select among operations sharing a method and path (``operation``)."""
    return frozenset(key for r in routes() for key, _ in r.static_query)


def _match_segments(template: tuple[str, ...], raw: list[str]) -> dict[str, str] | None:
    if len(template) != len(raw):
        return None
    labels: dict[str, str] = {}
    for want, got in zip(template, raw, strict=True):
        if want.startswith("{") and want.endswith("}"):
            if not got:
                return None
            labels[want[1:-1]] = unquote(got)
        elif unquote(got) != want:
            return None
    return labels


def match_route(method: str, raw_path: str) -> RouteMatch | None:
    """The operation a request is for, from its method, raw path and query, or None.

    Operations that share a method and path (``POST …/users`` is BatchUpdateUser,
    ``…?operation=suspend`` BatchSuspendUser) are told apart by the ``operation``
    query parameter, which must equal the operation's own value or be absent for both.
    """
    path, _, raw_query = raw_path.partition("?")
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query.setdefault(key, value)
    raw_segments = path.strip("/").split("/") if path.startswith("/") else []
    dispatch = {k: v for k, v in query.items() if k in _dispatch_keys()}
    for route in routes():
        if route.method != method.upper() or dict(route.static_query) != dispatch:
            continue
        labels = _match_segments(route.segments, raw_segments)
        if labels is not None:
            return RouteMatch(route, labels, query)
    return None

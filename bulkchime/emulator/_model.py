"""The model the emulator serves, loaded once with botocore, and the routes it defines.

The seed model ``chime-2018-05-01.json`` is the base: its 16 operations, their URIs and
errors. Current SDKs send members that later versions of the same operations have
(``UserType``, ``DefaultLicense``, …); those come from ``chime-2018-05-01.current.json``,
a vendored cut of botocore's current model (see :mod:`._vendor`), and are added to the
seed's shapes. Members that neither model has are not served: a request carrying one is
answered as if it were absent. The current model's routes of every other operation name
that operation in the error that answers it.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, unquote

from botocore.model import (  # type: ignore[import-untyped, unused-ignore]
    OperationModel,
    ServiceModel,
)

from ._vendor import CURRENT_MODEL_FILE, SEED_MODEL_FILE, read_model_file

__all__ = [
    "CONSOLE_PREFIX",
    "CURRENT_MODEL_FILE",
    "OPERATION_NAMES",
    "SEED_MODEL_FILE",
    "Route",
    "RouteMatch",
    "current_document",
    "match_route",
    "operation_model",
    "routes",
    "seed_document",
    "served_document",
    "service_model",
    "unserved_operation",
]

#: Where the seed model puts every operation; current SDKs send the same paths without it.
CONSOLE_PREFIX: Final = "/console"


@functools.cache
def seed_document() -> dict[str, Any]:
    """The seed model ``chime-2018-05-01`` as shipped beside this module (do not modify)."""
    return read_model_file(SEED_MODEL_FILE)


@functools.cache
def current_document() -> dict[str, Any]:
    """The vendored cut of botocore's current model (do not modify)."""
    return read_model_file(CURRENT_MODEL_FILE)


def served_document(seed: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """The seed model with the members that *current* adds to its shapes.

    The seed's operations, URIs and shapes stay as they are; a structure gains the
    members it lacks, and a shape they refer to is added when the seed has none of that
    name.
    """
    served = copy.deepcopy(dict(seed))
    shapes: dict[str, Any] = served["shapes"]
    for name, shape in current["shapes"].items():
        if name not in shapes:
            shapes[name] = copy.deepcopy(shape)
        elif "members" in shape and "members" in shapes[name]:
            for member, ref in shape["members"].items():
                shapes[name]["members"].setdefault(member, copy.deepcopy(ref))
    return served


@functools.cache
def service_model() -> ServiceModel:
    """The model the emulator serves: the seed, with the members current SDKs send."""
    document = served_document(seed_document(), current_document())
    return ServiceModel(document, service_name="chime")


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


def _routes_of(name: str, method: str, request_uri: str) -> list[Route]:
    path, _, query = request_uri.partition("?")
    static = tuple(parse_qsl(query, keep_blank_values=True))
    segments = tuple(path.strip("/").split("/"))
    found = [Route(name, method, segments, static)]
    prefix = tuple(CONSOLE_PREFIX.strip("/").split("/"))
    if segments[: len(prefix)] == prefix:
        found.append(Route(name, method, segments[len(prefix) :], static))
    return found


@functools.cache
def routes() -> tuple[Route, ...]:
    """Every route served: each operation under ``/console/accounts…`` and ``/accounts…``."""
    found: list[Route] = []
    for name in OPERATION_NAMES:
        http = operation_model(name).http
        found += _routes_of(name, http["method"], http["requestUri"])
    return tuple(found)


@functools.cache
def _unserved_routes() -> tuple[Route, ...]:
    """The current model's routes of the operations the emulator does not serve."""
    found: list[Route] = []
    for name, http in sorted(current_document()["routes"].items()):
        if name not in OPERATION_NAMES:
            found += _routes_of(name, http["method"], http["requestUri"])
    return tuple(found)


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


@functools.cache
def _dispatch_keys(candidates: tuple[Route, ...]) -> frozenset[str]:
    """Query keys that select among operations sharing a method and path (``operation``)."""
    return frozenset(key for r in candidates for key, _ in r.static_query)


def _match(candidates: tuple[Route, ...], method: str, raw_path: str) -> RouteMatch | None:
    path, _, raw_query = raw_path.partition("?")
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query.setdefault(key, value)
    raw_segments = path.strip("/").split("/") if path.startswith("/") else []
    keys = _dispatch_keys(candidates)
    dispatch = {k: v for k, v in query.items() if k in keys}
    for route in candidates:
        if route.method != method.upper() or dict(route.static_query) != dispatch:
            continue
        labels = _match_segments(route.segments, raw_segments)
        if labels is not None:
            return RouteMatch(route, labels, query)
    return None


def match_route(method: str, raw_path: str) -> RouteMatch | None:
    """The served operation a request is for, from its method, raw path and query, or None.

    Operations that share a method and path (``POST …/users`` is BatchUpdateUser,
    ``…?operation=suspend`` BatchSuspendUser) are told apart by the ``operation``
    query parameter, which must equal the operation's own value or be absent for both.
    """
    return _match(routes(), method, raw_path)


def unserved_operation(method: str, raw_path: str) -> str | None:
    """The current model's operation a request is for when the emulator does not serve it
    (``ListPhoneNumbers`` for ``GET /phone-numbers``), or None."""
    match = _match(_unserved_routes(), method, raw_path)
    return None if match is None else match.route.operation

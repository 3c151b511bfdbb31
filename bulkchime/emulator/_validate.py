"""Request parsing and validation driven by the served model's input shapes.

botocore's own ``ParamValidator`` checks types, required members and minima only;
the service also enforces maxima, patterns and enums, so all of them are checked here
from the same shapes: the seed's, with the members current SDKs send (``UserType``,
``DefaultLicense``, …; see :mod:`._model`). Members that neither model has are
accepted and ignored.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from botocore.model import Shape  # type: ignore[import-untyped, unused-ignore]

from ._errors import ChimeError, bad_request
from ._model import operation_model

__all__ = ["check_params", "parse_body", "parse_input"]


def parse_body(body: bytes) -> dict[str, Any]:
    """The JSON object of a request body (empty body: ``{}``), or 400 BadRequest."""
    if not body.strip():
        return {}
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise bad_request("The request body is not valid JSON: it is nested too deeply") from None
    if not isinstance(document, dict):
        raise bad_request(f"The request body must be a JSON object, not {_json_type(document)}")
    return document


def parse_input(
    operation: str, labels: Mapping[str, str], query: Mapping[str, str], body: Mapping[str, Any]
) -> dict[str, Any]:
    """The operation's input parameters, gathered from URI, query and body, and validated.

    Raises 400 ``BadRequestException`` naming every violated constraint.
    """
    shape = operation_model(operation).input_shape
    params: dict[str, Any] = {}
    errors: list[str] = []
    if shape is not None:
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            wire_name = member.serialization.get("name", name)
            if location == "uri":
                if wire_name in labels:
                    params[name] = labels[wire_name]
            elif location == "querystring":
                if wire_name in query:
                    params[name] = _from_query(member, query[wire_name], name, errors)
            elif location is None and body.get(name) is not None:
                params[name] = body[name]
        _check(shape, params, "", errors)
    _refuse(errors)
    return params


def check_params(operation: str, params: Mapping[str, Any]) -> None:
    """Validate parameters given as the model's members (a request made in-process)."""
    shape = operation_model(operation).input_shape
    errors: list[str] = []
    if shape is not None:
        _check(shape, dict(params), "", errors)
    _refuse(errors)


def _refuse(errors: list[str]) -> None:
    """400 ``BadRequestException`` naming every violated constraint, if any."""
    if errors:
        count = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected"
        raise ChimeError("BadRequestException", f"{count}: " + "; ".join(errors))


def _from_query(member: Shape, value: str, where: str, errors: list[str]) -> Any:
    if member.type_name in ("integer", "long"):
        try:
            return int(value)
        except ValueError:
            errors.append(f"Value at '{where}' must be an integer")
            return None
    if member.type_name == "boolean":
        if value.lower() not in ("true", "false"):
            errors.append(f"Value at '{where}' must be true or false")
            return None
        return value.lower() == "true"
    return value


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _at(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _check(shape: Shape, value: Any, where: str, errors: list[str]) -> None:
    """Append to ``errors`` every way ``value`` breaks ``shape`` (never echoing values)."""
    kind = shape.type_name
    if kind == "structure":
        _check_structure(shape, value, where, errors)
    elif kind == "list":
        _check_list(shape, value, where, errors)
    elif kind == "string":
        _check_string(shape, value, where, errors)
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"Value at '{where}' must be an integer, not {_json_type(value)}")
        else:
            _check_range(shape, value, where, "be", errors)
    elif kind in ("float", "double"):
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            errors.append(f"Value at '{where}' must be a number, not {_json_type(value)}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            errors.append(f"Value at '{where}' must be a boolean, not {_json_type(value)}")
    elif kind == "map" and not isinstance(value, dict):
        errors.append(f"Value at '{where}' must be an object, not {_json_type(value)}")


def _check_structure(shape: Shape, value: Any, where: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(f"Value at '{where}' must be an object, not {_json_type(value)}")
        return
    for name in shape.required_members:
        if value.get(name) is None:
            errors.append(f"Value at '{_at(where, name)}' is required and was not given")
    for name, member in shape.members.items():
        if value.get(name) is not None:
            _check(member, value[name], _at(where, name), errors)


def _check_list(shape: Shape, value: Any, where: str, errors: list[str]) -> None:
    if not isinstance(value, list):
        errors.append(f"Value at '{where}' must be an array, not {_json_type(value)}")
        return
    _check_range(shape, len(value), where, "have a number of items", errors)
    for index, item in enumerate(value):
        _check(shape.member, item, f"{where}[{index}]", errors)


def _check_string(shape: Shape, value: Any, where: str, errors: list[str]) -> None:
    if not isinstance(value, str):
        errors.append(f"Value at '{where}' must be a string, not {_json_type(value)}")
        return
    if shape.enum and value not in shape.enum:
        errors.append(f"Value at '{where}' must be one of {', '.join(shape.enum)}")
        return
    _check_range(shape, len(value), where, "have a length", errors)
    pattern = shape.metadata.get("pattern")
    if pattern is not None and re.search(pattern, value) is None:
        errors.append(f"Value at '{where}' must match the pattern {pattern}")


def _check_range(shape: Shape, number: int, where: str, what: str, errors: list[str]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and number < low:
        errors.append(f"Value at '{where}' must {what} greater than or equal to {low}")
    if high is not None and number > high:
        errors.append(f"Value at '{where}' must {what} less than or equal to {high}")

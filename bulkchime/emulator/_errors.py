"""The errors the emulator answers with, shaped as the real service's."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Final

from ._model import service_model

__all__ = [
    "ERROR_CODES",
    "SERVICE_ERRORS",
    "ChimeError",
    "bad_request",
    "forbidden",
    "not_found",
    "status_of",
    "unknown_operation",
]

#: The model's ``ErrorCode`` value carried as ``Code`` in the body of each exception shape.
ERROR_CODES: Final[Mapping[str, str]] = {
    "BadRequestException": "BadRequest",
    "ConflictException": "Conflict",
    "ForbiddenException": "Forbidden",
    "NotFoundException": "NotFound",
    "ServiceFailureException": "ServiceFailure",
    "ServiceUnavailableException": "ServiceUnavailable",
    "ThrottledClientException": "Throttled",
    "UnauthorizedClientException": "Unauthorized",
    "UnprocessableEntityException": "Unprocessable",
}

#: Errors of the service itself, not of the model: shape name -> (``Code``, HTTP status).
#: A route that no served operation has is answered as AWS answers an unknown operation.
SERVICE_ERRORS: Final[Mapping[str, tuple[str, int]]] = {
    "UnknownOperationException": ("UnknownOperation", 404),
}


@functools.cache
def status_of(shape_name: str) -> int:
    """The HTTP status the seed model gives an exception shape."""
    status: int = service_model().shape_for(shape_name).metadata["error"]["httpStatusCode"]
    return status


class ChimeError(Exception):
    """One error response: exception shape name, ``Code``, message and HTTP status.

    The status comes from the shape's ``httpStatusCode`` in the seed model, or from
    :data:`SERVICE_ERRORS` for the service's own errors.
    """

    def __init__(
        self, shape_name: str, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        if shape_name in ERROR_CODES:
            self.code, self.status = ERROR_CODES[shape_name], status_of(shape_name)
        elif shape_name in SERVICE_ERRORS:
            self.code, self.status = SERVICE_ERRORS[shape_name]
        else:
            raise ValueError(f"{shape_name!r} is not an error shape of the model")
        self.shape_name = shape_name
        self.message = message
        self.headers: Mapping[str, str] = dict(headers or {})
        super().__init__(f"{shape_name}: {message}")

    def body(self) -> dict[str, str]:
        """The JSON body: ``{"Code": ..., "Message": ...}``."""
        return {"Code": self.code, "Message": self.message}


def bad_request(message: str) -> ChimeError:
    """A 400 ``BadRequestException``."""
    return ChimeError("BadRequestException", message)


def not_found(message: str) -> ChimeError:
    """A 404 ``NotFoundException``."""
    return ChimeError("NotFoundException", message)


def forbidden(message: str) -> ChimeError:
    """A 403 ``ForbiddenException``."""
    return ChimeError("ForbiddenException", message)


def unknown_operation(message: str) -> ChimeError:
    """A 404 ``UnknownOperationException``: no operation the emulator serves is asked for."""
    return ChimeError("UnknownOperationException", message)

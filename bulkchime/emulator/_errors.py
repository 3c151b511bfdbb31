"""The errors the emulator answers with, shaped as the real service's."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Final

from ._model import service_model

__all__ = ["ERROR_CODES", "ChimeError", "bad_request", "forbidden", "not_found", "status_of"]

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


@functools.cache
def status_of(shape_name: str) -> int:
    """The HTTP status the seed model gives an exception shape."""
    status: int = service_model().shape_for(shape_name).metadata["error"]["httpStatusCode"]
    return status


class ChimeError(Exception):
    """One error response: exception shape name, ``Code``, message and HTTP status.

    The status comes from the shape's ``httpStatusCode`` in the seed model.
    """

    def __init__(
        self, shape_name: str, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        if shape_name not in ERROR_CODES:
            raise ValueError(f"{shape_name!r} is not an error shape of the model")
        self.shape_name = shape_name
        self.code = ERROR_CODES[shape_name]
        self.message = message
        self.status = status_of(shape_name)
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

"""The SigV4 check: recompute the request's signature with botocore and compare.

The signature is recomputed over the request exactly as it arrived: the method, the
raw path and query (``request.raw_path``, not a decoded or re-encoded form, so that
what botocore and the AWS CLI signed is what is checked), the headers the client
listed in ``SignedHeaders`` and the body bytes.

Temporary credentials are emulated by a list of live session tokens: a request whose
``X-Amz-Security-Token`` is not one of them is refused as AWS refuses an expired one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from botocore.auth import SigV4Auth  # type: ignore[import-untyped, unused-ignore]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped, unused-ignore]
from botocore.credentials import Credentials  # type: ignore[import-untyped, unused-ignore]

from ._errors import ChimeError, forbidden

__all__ = ["EXPIRED_TOKEN_MESSAGE", "SERVICE", "Headers", "SignedRequest", "verify_signature"]

#: The signing name of the service, the third part of the credential scope.
SERVICE: Final = "chime"
#: What AWS answers for a session token that is no longer valid.
EXPIRED_TOKEN_MESSAGE: Final = "The security token included in the request is expired"

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*Signature=(?P<signature>[0-9a-fA-F]{64})\s*"
)
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")
_UNSIGNED = frozenset({"UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"})
_FIX_IT = "Check your AWS access key id, secret access key and signing method."


class Headers(Protocol):
    """What is needed of a request's (case-insensitive, multi-valued) headers."""

    def get(self, key: str, /) -> str | None: ...

    def getall(self, key: str, default: list[str], /) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A request as it arrived, for the signature check."""

    method: str
    #: The Host header, as the client sent it (with its port).
    host: str
    #: Path and query exactly as on the request line.
    raw_path: str
    headers: Headers
    body: bytes


def verify_signature(
    request: SignedRequest,
    secrets: Mapping[str, str],
    *,
    session_tokens: Collection[str] = (),
) -> str:
    """Check the request's SigV4 signature; return the access key id that signed it.

    ``secrets`` maps known access key ids to their secret keys. Raises 403
    ``ForbiddenException`` for a missing, malformed or wrong signature and 401
    ``UnauthorizedClientException`` for an access key id that is not known. When
    ``session_tokens`` is not empty, a request carrying an ``X-Amz-Security-Token``
    that is not one of them is refused with 403 and :data:`EXPIRED_TOKEN_MESSAGE`;
    a request without a token is checked as usual.
    """
    header = request.headers.get("Authorization")
    if not header:
        raise forbidden("Missing Authentication Token: the request is not signed. " + _FIX_IT)
    parsed = _AUTHORIZATION.fullmatch(header.strip())
    if parsed is None:
        raise forbidden("The Authorization header is not a valid AWS4-HMAC-SHA256 signature.")
    scope = parsed["credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise forbidden("The Credential of the Authorization header is malformed.")
    access_key_id, day, region, service, _ = scope
    if service != SERVICE:
        raise forbidden(f"Credential should be scoped to the correct service: {SERVICE!r}.")
    token = request.headers.get("X-Amz-Security-Token")
    if token is not None and session_tokens and token not in session_tokens:
        raise forbidden(EXPIRED_TOKEN_MESSAGE)
    secret = secrets.get(access_key_id)
    if secret is None:
        raise ChimeError(
            "UnauthorizedClientException",
            "The security token included in the request is invalid: unknown access key id. "
            + _FIX_IT,
        )
    amz_date = request.headers.get("X-Amz-Date") or ""
    if not _AMZ_DATE.fullmatch(amz_date) or amz_date[:8] != day:
        raise forbidden("X-Amz-Date is missing or does not match the credential scope date.")
    _check_payload_hash(request)
    expected = _signature(request, parsed["signed"].lower().split(";"), secret, region, amz_date)
    if not hmac.compare_digest(expected, parsed["signature"].lower()):
        raise forbidden(
            "The request signature we calculated does not match the signature you provided. "
            + _FIX_IT
        )
    return access_key_id


def _check_payload_hash(request: SignedRequest) -> None:
    claimed = request.headers.get("X-Amz-Content-SHA256")
    if claimed and claimed not in _UNSIGNED:
        if claimed.lower() != hashlib.sha256(request.body).hexdigest():
            raise forbidden("X-Amz-Content-SHA256 does not match the request body.")


def _signature(
    request: SignedRequest, signed_headers: list[str], secret: str, region: str, amz_date: str
) -> str:
    headers: dict[str, str] = {}
    for name in signed_headers:
        values = request.headers.getall(name, [])
        if not values:
            raise forbidden(f"The signed header {name!r} is missing from the request.")
        headers[name] = ",".join(" ".join(value.split()) for value in values)
    if "host" not in headers:
        raise forbidden("The Host header must be signed.")
    aws_request = AWSRequest(
        method=request.method,
        url=f"http://{request.host}{request.raw_path}",
        headers=headers,
        data=request.body,
    )
    aws_request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials("", secret), SERVICE, region)
    canonical = signer.canonical_request(aws_request)
    result: str = signer.signature(signer.string_to_sign(aws_request, canonical), aws_request)
    return result

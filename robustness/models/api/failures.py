"""Why an API call failed, as one of a few kinds the run can count and the retry loop can act on.

Provider adapters translate SDK exceptions into :class:`ApiFailure` (see ``classify_*``); the
shared retry loop retries the transient kinds and records the rest on the result. Every detail
string is redacted before it is stored.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Mapping

from robustness.redaction import redact_text

# Failure kinds recorded in results' ``error`` field.
RATE_LIMIT = "rate_limit"
SERVER_ERROR = "server_error"
TIMEOUT = "timeout"
CONNECTION = "connection"
MALFORMED = "malformed"
REFUSAL = "refusal"
CONTENT_FILTER = "content_filter"
BAD_REQUEST = "bad_request"
AUTH = "auth"
NOT_FOUND = "not_found"
UNEXPECTED = "unexpected"

TRANSIENT = (RATE_LIMIT, SERVER_ERROR, TIMEOUT, CONNECTION)

_DETAIL_LIMIT = 500


@dataclass(eq=False)
class ApiFailure(Exception):
    """A failed call: ``kind`` (one of the constants above), a redacted ``detail``, and the
    server's requested wait (``Retry-After``) when it gave one."""

    kind: str
    detail: str = ""
    retry_after: float | None = None
    status: int | None = None

    def __post_init__(self) -> None:
        self.detail = redact_text(self.detail)[:_DETAIL_LIMIT]
        super().__init__(f"{self.kind}: {self.detail}")

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if not headers:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000.0)
    except (TypeError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retry_delay_from_body(body: Any) -> float | None:
    """Google's ``RetryInfo.retryDelay`` ("30s", "1.5s") inside an error body, if present."""
    text = body if isinstance(body, str) else json.dumps(body, default=str)
    match = re.search(r'"retryDelay"\s*:\s*"(\d+(?:\.\d+)?)s"', text)
    return float(match.group(1)) if match else None


def kind_for_status(status: int | None, code: str | None = None) -> str:
    """The failure kind of an HTTP error status (and provider error code)."""
    if code and "content_filter" in code:
        return CONTENT_FILTER
    if status == 429:
        return RATE_LIMIT
    if status in (408,):
        return TIMEOUT
    if status is not None and (status >= 500 or status == 409):
        return SERVER_ERROR  # 409 (conflict) and 529 (overloaded) are transient too
    if status in (401, 403):
        return AUTH
    if status == 404:
        return NOT_FOUND
    return BAD_REQUEST


def _headers_of(exc: BaseException) -> Mapping[str, str] | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    return headers if headers is not None else None


def _transport_kind(exc: BaseException) -> str | None:
    """Kinds of transport-level exceptions (httpx / httpx2 / asyncio / OS), by class."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if isinstance(exc, TimeoutError) or "TimeoutException" in names:
        return TIMEOUT
    if names & {"TransportError", "NetworkError", "RemoteProtocolError", "ProtocolError",
                "ConnectError", "ReadError", "WriteError", "CloseError"}:
        return CONNECTION
    if isinstance(exc, (ConnectionError, OSError)):
        return CONNECTION
    return None


def classify_openai_style(exc: BaseException) -> ApiFailure:
    """OpenAI and Anthropic SDK exceptions share a shape (status_code, response, body)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "APITimeoutError" in names:
        return ApiFailure(TIMEOUT, str(exc))
    if "APIConnectionError" in names:
        cause = exc.__cause__ or exc.__context__
        return ApiFailure(CONNECTION, f"{exc} ({type(cause).__name__})" if cause else str(exc))
    if "APIStatusError" in names:
        status = getattr(exc, "status_code", None)
        body = getattr(exc, "body", None)
        code = None
        if isinstance(body, Mapping):
            err = body.get("error", body)
            code = str(err.get("code") or err.get("type") or "") if isinstance(err, Mapping) else None
        return ApiFailure(kind_for_status(status, code), str(exc),
                          retry_after=parse_retry_after(_headers_of(exc)), status=status)
    if "APIResponseValidationError" in names or isinstance(exc, (json.JSONDecodeError,
                                                                 UnicodeDecodeError)):
        return ApiFailure(MALFORMED, f"{type(exc).__name__}: {exc}")
    return classify_generic(exc)


def classify_generic(exc: BaseException) -> ApiFailure:
    """Anything else: transport errors by class, decoding errors as malformed."""
    if isinstance(exc, ApiFailure):
        return exc
    kind = _transport_kind(exc)
    if kind is not None:
        return ApiFailure(kind, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)):
        return ApiFailure(MALFORMED, f"{type(exc).__name__}: {exc}")
    return ApiFailure(UNEXPECTED, f"{type(exc).__name__}: {exc}")

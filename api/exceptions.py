"""Errors the services raise; ``api/errors.py`` alone turns them into HTTP answers.

Each carries a stable machine-readable ``code`` and a sentence for people. Services never pick
status codes.
"""

from __future__ import annotations

from core.exceptions import BrokerError


class DomainError(BrokerError):
    """A request the broker refuses, with the reason; nothing was changed."""

    code = "refused"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class UnauthenticatedError(DomainError):
    """No valid credentials: log in again or send a valid API key."""

    code = "unauthenticated"


class ForbiddenError(DomainError):
    """Authenticated, but not allowed yet (2FA not enrolled, KYC not verified)."""

    code = "forbidden"


class NotFoundError(DomainError):
    """No such resource for this user; another user's resources are not found either."""

    code = "not_found"


class ConflictError(DomainError):
    """The resource exists already or is in a state that forbids the change."""

    code = "conflict"


class InvalidRequestError(DomainError):
    """The request is well-formed but breaks a business rule (tick size, market hours...)."""

    code = "invalid"


class InsufficientFundsError(InvalidRequestError):
    """Available cash or shares do not cover the request."""

    code = "insufficient_funds"


class FraudRuleError(InvalidRequestError):
    """A fraud rule refused the request; ``code`` names the rule."""

    code = "fraud_rule"


class RateLimitedError(DomainError):
    """Too many requests in the window; retry after ``retry_after_s`` seconds."""

    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class RateLimitUnavailableError(RateLimitedError):
    """The counters a limit needs cannot be reached, so the request is refused for a moment."""

    code = "rate_limit_unavailable"

"""Request validation errors as a sentence naming each field, and a JSON-safe list beside it.

FastAPI's own answer echoes each offending input back, and an input such as ``NaN`` or ``1e400``
cannot be written as JSON; nothing here repeats an input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Bounds on what one answer repeats: a body of many bad items must not make a huge answer.
PROBLEMS_SHOWN_MAX = 10
FIELD_CHARS_MAX = 100
REASON_CHARS_MAX = 300

_LOCATIONS = {
    "body": "body field",
    "query": "query parameter",
    "path": "path parameter",
    "header": "header",
    "cookie": "cookie",
}
# Pydantic prefixes the message of a validator that raised ValueError; people need only the rest.
_VALUE_ERROR_PREFIX = "Value error, "


@dataclass(frozen=True)
class FieldProblem:
    """One field that failed validation: where it is, its name, why, and pydantic's error type."""

    location: str
    field: str
    reason: str
    type: str


@dataclass(frozen=True)
class Summary:
    """A sentence naming the fields, and the problems themselves (at most PROBLEMS_SHOWN_MAX)."""

    detail: str
    problems: tuple[FieldProblem, ...]


def safe_text(text: str, chars_max: int) -> str:
    """Text cut to ``chars_max`` and made encodable as UTF-8 (a lone surrogate is escaped)."""
    if len(text) > chars_max:
        text = text[:chars_max] + "..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def summarize(errors: Sequence[Mapping[str, Any]]) -> Summary:
    """Summarize pydantic/FastAPI error dicts (``loc``, ``msg``, ``type``) for an answer."""
    problems = tuple(_problem(error) for error in errors[:PROBLEMS_SHOWN_MAX])
    parts = [_describe(problem) for problem in problems]
    hidden = len(errors) - len(problems)
    if hidden > 0:
        parts.append(f"and {hidden} more")
    return Summary(detail="; ".join(parts) or "the request is invalid", problems=problems)


def _problem(error: Mapping[str, Any]) -> FieldProblem:
    loc = tuple(error.get("loc", ()))
    location = str(loc[0]) if loc else "request"
    field = _dotted(loc[1:])
    reason = str(error.get("msg", "is invalid")).removeprefix(_VALUE_ERROR_PREFIX)
    kind = str(error.get("type", "invalid"))
    return FieldProblem(
        location=safe_text(location, FIELD_CHARS_MAX),
        field=safe_text(field, FIELD_CHARS_MAX),
        reason=safe_text(reason, REASON_CHARS_MAX),
        type=safe_text(kind, FIELD_CHARS_MAX),
    )


def _dotted(path: Sequence[Any]) -> str:
    """``("items", 0, "price")`` as ``items[0].price``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _describe(problem: FieldProblem) -> str:
    if not problem.field:
        return f"{problem.location}: {problem.reason}"
    where = _LOCATIONS.get(problem.location, problem.location)
    return f"{where} {problem.field}: {problem.reason}"

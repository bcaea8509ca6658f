"""Raw requests a schema-driven generator does not send, for every operation of an OpenAPI schema.

Each field of each JSON body in turn gets a value JSON cannot carry back (``NaN``, ``1e400``), a
string no database takes (a lone surrogate, NUL), a huge one, deep nesting, bytes that are not
UTF-8; whole bodies get the same; query, path and header parameters get numbers and bytes no
parser expects (the values are in ``hostile_values.py``). Fields come from the schema, so a new
operation is covered without a change here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tests.integration.api.hostile_values import (
    FIELD_VALUES,
    HEADER_VALUES,
    PARAM_VALUES,
    WHOLE_BODIES,
)

HTTP_METHODS = ("get", "put", "post", "delete", "patch")
# Path parameters need a well-formed value while another parameter is the one under test.
_PLAIN_BY_FORMAT = {"uuid": str(uuid.UUID(int=1))}


@dataclass(frozen=True)
class RawRequest:
    """One request as bytes on the wire, and what it tries (for a failure's message)."""

    method: str
    target: str
    body: bytes | None
    headers: Mapping[str, str]
    what: str


# The headers a request needs to get past authentication: (path, body) -> headers.
HeadersFor = Callable[[str, bytes], Mapping[str, str]]


def hostile_requests(
    schema: Mapping[str, Any],
    base_bodies: Mapping[str, Sequence[Mapping[str, Any]]],
    bytes_max: int,
    headers_for: HeadersFor,
) -> Iterator[RawRequest]:
    """Every hostile request for every operation, each with ``headers_for(path, body)``.

    ``base_bodies`` holds valid bodies per path (others start from the schema's example or
    nothing), so the field under test is the only thing wrong with a request; each field is
    tried in each of them.
    """
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method not in HTTP_METHODS:
                continue
            parameters = operation.get("parameters", [])
            target = _target(path, parameters)
            yield from _param_requests(method.upper(), path, parameters, headers_for)
            body_schema = _json_body_schema(schema, operation)
            if body_schema is None:
                continue
            for base in base_bodies.get(path) or [_example(body_schema)]:
                for field in body_schema.get("properties", {}):
                    for value in FIELD_VALUES:
                        body = _with_raw_field(base, field, value)
                        what = f"{field}={value[:40]!r} in {base}"
                        yield _request(method.upper(), target, path, body, headers_for, what)
            for body in (*WHOLE_BODIES, *_huge_strings(bytes_max)):
                what = f"body={body[:40]!r}"
                yield _request(method.upper(), target, path, body, headers_for, what)


def _request(
    method: str, target: str, path: str, body: bytes, headers_for: HeadersFor, what: str
) -> RawRequest:
    headers = {"content-type": "application/json", **_lower(headers_for(path, body))}
    return RawRequest(method, target, body, headers, f"{method} {path} {what[:120]}")


def _huge_strings(bytes_max: int) -> tuple[bytes, ...]:
    """A string just under the body bound, and one over it."""
    under = b'{"s": "' + b"x" * (bytes_max - 20) + b'"}'
    return (under, b'"' + b"x" * bytes_max + b'"')


def _with_raw_field(base: Mapping[str, Any], field: str, raw: bytes) -> bytes:
    """``base`` as JSON with ``field`` set to ``raw``, bytes written as they are."""
    others = {name: value for name, value in base.items() if name != field}
    head = json.dumps(others).encode()[:-1]
    separator = b", " if others else b""
    return head + separator + json.dumps(field).encode() + b": " + raw + b"}"


def _json_body_schema(schema: Mapping[str, Any], operation: Mapping[str, Any]) -> Any:
    content = operation.get("requestBody", {}).get("content", {})
    body = content.get("application/json", {}).get("schema")
    if body is not None and "$ref" in body:
        body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    return body


def _example(body_schema: Mapping[str, Any]) -> Mapping[str, Any]:
    examples = body_schema.get("examples") or [{}]
    first = examples[0]
    return first if isinstance(first, dict) else {}


def _target(path: str, parameters: list[Mapping[str, Any]], **given: str) -> str:
    """The path with each path parameter filled: the given value, else a plain one."""
    for parameter in parameters:
        if parameter["in"] == "path":
            name = parameter["name"]
            value = given.get(name) or _PLAIN_BY_FORMAT.get(
                parameter.get("schema", {}).get("format", ""), "1"
            )
            path = path.replace("{" + name + "}", value)
    return path


def _param_requests(
    method: str, path: str, parameters: list[Mapping[str, Any]], headers_for: HeadersFor
) -> Iterator[RawRequest]:
    plain = _target(path, parameters)
    plain_headers = _lower(headers_for(path, b""))
    for parameter in parameters:
        name, where = parameter["name"], parameter["in"]
        if where == "path":
            for value in PARAM_VALUES:
                target = _target(path, parameters, **{name: value or "%20"})
                yield RawRequest(method, target, None, plain_headers, f"{method} {path} {name}")
        elif where == "query":
            for value in PARAM_VALUES:
                target = f"{plain}?{quote(name)}={value}"
                yield RawRequest(method, target, None, plain_headers, f"{method} {path} {name}")
        elif where == "header" and name.lower() != "authorization":
            for value in HEADER_VALUES:
                headers = {**plain_headers, name.lower(): value}
                what = f"{method} {path} header {name}={value[:20]!r}"
                yield RawRequest(method, plain, None, headers, what)


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names in lower case, so a replaced header is not sent twice."""
    return {name.lower(): value for name, value in headers.items()}

"""Values no schema-driven generator sends: the dictionary of the hostile raw requests.

Numbers json.loads reads but JSON cannot write back, numbers past every column, text no database
stores, bytes that are not UTF-8, nesting past what a recursive parser reads, and the usual
injection probes. Field values are raw JSON; parameter values are already percent-encoded.
"""

from __future__ import annotations

NESTING_DEPTH = 5_000
KEYS_MANY = 5_000

FIELD_VALUES: tuple[bytes, ...] = (
    # Numbers json.loads reads as floats JSON cannot write back, or as ints past every column.
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1e400",
    b"-1e400",
    b"1E400",
    b"2e308",
    b"1e308",
    b"1e-400",
    b"4.9e-324",
    b"-0",
    b"-0.0",
    b"0e0",
    b"0.1",
    b"1.0",
    b"1e2",
    b"1.00000000000000000000001",
    b"123456789012345678901234567890.123456789",
    b"9007199254740993",
    b"9223372036854775808",
    b"-9223372036854775809",
    b"18446744073709551616",
    b"9" * 400,
    b"9" * 5_000,  # past Python's 4,300-digit limit for int()
    # Other JSON types where a number or a string belongs.
    b"true",
    b"false",
    b"null",
    b"[]",
    b"{}",
    b"[1]",
    b"[NaN, Infinity]",
    b'{"a": NaN}',
    b'{"$gt": ""}',
    # Strings: numbers spelled out, empty and blank, control characters, lone surrogates.
    b'"NaN"',
    b'"Infinity"',
    b'"-Infinity"',
    b'"1e400"',
    b'"1e-400"',
    b'"0x10"',
    b'"1_000"',
    b'" 1 "',
    b'"-0"',
    b'""',
    b'"   "',
    b'"\\t\\n\\r"',
    b'"\\u0000"',
    b'"a\\u0000b"',
    b'"\\u001b[31m"',
    b'"\\ud800"',
    b'"\\udc00\\ud800"',
    b'"\\\\"',
    b'"\\u202e\\u0301"',
    '"\U0001f4b8\u00e9\u4e2d"'.encode(),
    b'"' + "\u00e9".encode() * 2_000 + b'"',
    b'"' + b"x" * 10_000 + b'"',
    b'"\'; DROP TABLE users; --"',
    b'"%s%n%x"',
    b'"${jndi:ldap://x}"',
    b'"<script>alert(1)</script>"',
    b'"../../etc/passwd"',
    b'"1970-01-01T00:00:00Z"',
    b'"9999-12-31T23:59:59Z"',
    b'"0000-00-00"',
    b'"00000000-0000-0000-0000-000000000000"',
    # Bytes that are not UTF-8, and nesting past what a recursive parser can read.
    b'"\xff\xfe"',
    b'"\xed\xa0\x80"',  # a surrogate encoded in UTF-8: not UTF-8 either
    b"[" * NESTING_DEPTH + b"]" * NESTING_DEPTH,
    b'{"a":' * NESTING_DEPTH + b"1" + b"}" * NESTING_DEPTH,
)

# Whole bodies: empty, not JSON, not an object, a byte-order mark, duplicate or countless keys.
WHOLE_BODIES: tuple[bytes, ...] = (
    b"",
    b"NaN",
    b"1e400",
    b"null",
    b"[]",
    b'"x"',
    b"{",
    b"}",
    b"\xef\xbb\xbf{}",
    b"\xff\xfe{\x00}\x00",
    b'{"a": 1, "a": 2}',
    b"{" + b",".join(b'"k%d": 1' % i for i in range(KEYS_MANY)) + b"}",
    b"[" * NESTING_DEPTH + b"]" * NESTING_DEPTH,
)

PARAM_VALUES: tuple[str, ...] = (
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "1e-400",
    "-1",
    "0",
    "-0",
    "1.5",
    "0x10",
    "1_000",
    "+1",
    "%201%20",
    "9" * 40,
    "9" * 5_000,
    "true",
    "null",
    "[]",
    "%00",
    "a%00b",
    "%1B",
    "%FF",
    "%ED%A0%80",
    "%F0%9F%92%B8",
    "%C3%A9" * 500,
    "x" * 4_000,
    "..%2F..%2Fetc",
    "%27%3B--",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00",
    "",
)

# Header values go out as Latin-1 bytes: "\xff" is one byte 0xFF on the wire.
HEADER_VALUES: tuple[str, ...] = (
    "NaN",
    "1e400",
    "-1",
    "\xff" * 8,
    "\xe9t\xe9",
    "x" * 4_000,
    " ",
    "a\tb",
    "00000000-0000-0000-0000-000000000000",
    "%00",
)

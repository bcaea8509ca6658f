"""The simulator front's framing: where a first frame ends, and which session a Logon names."""

from __future__ import annotations

from fixbridge.simulator.logon_front import first_frame_end, logon_session


def _frame(fields: list[tuple[int, str]]) -> bytes:
    body = b"".join(f"{tag}={value}\x01".encode() for tag, value in fields)
    head = f"8=FIX.4.4\x019={len(body)}\x01".encode()
    return head + body + f"10={sum(head + body) % 256:03d}\x01".encode()


LOGON = _frame([(35, "A"), (49, "BROKER"), (56, "EXCHANGE"), (34, "42"), (98, "0"), (108, "30")])


def test_a_frame_ends_after_its_checksum_and_not_before_all_of_it_arrived() -> None:
    assert first_frame_end(LOGON) == len(LOGON)
    assert first_frame_end(LOGON + b"8=FIX.4.4\x019=5") == len(LOGON)
    assert first_frame_end(LOGON[:-1]) is None
    assert first_frame_end(b"8=FIX.4.4\x019=") is None
    assert first_frame_end(b"GET / HTTP/1.1\r\n") is None


def test_a_logon_names_its_session_from_the_peer_side_and_other_frames_none() -> None:
    assert logon_session(LOGON) == ("FIX.4.4", "BROKER", "EXCHANGE")
    heartbeat = _frame([(35, "0"), (49, "BROKER"), (56, "EXCHANGE"), (34, "43")])
    assert logon_session(heartbeat) is None
    assert logon_session(_frame([(35, "A"), (49, "BROKER"), (34, "1")])) is None

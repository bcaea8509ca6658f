"""The chaos suite's pure logic on hand-made records: summaries, figures, SSE ids, the FIX view."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from core.contracts.enums import OrderStatus
from tests.chaos.checks import (
    exchange_view,
    load_problems,
    new_order_problems,
    parse_fix_line,
    state_mismatches,
)
from tests.chaos.figures import KillEvent, kill_figures, markdown_table, write_figures
from tests.chaos.load import (
    OrderRecord,
    Outcome,
    longest_stretch_without_accept,
    p99_latency_s,
    percentile,
    summarize,
)
from tests.chaos.sse_watch import CONNECT, ClientLog, SseEvent, analyse, longest_silence, problems

T0 = 1_800_000_000.0


def record(
    started: float, latency: float, outcome: Outcome = Outcome.ACCEPTED, code: str | None = None
) -> OrderRecord:
    """An order first tried at T0 + ``started`` that ended ``latency`` seconds later."""
    made = OrderRecord(f"k{started}", 1, {}, T0 + started)
    made.finished_at = T0 + started + latency
    made.latency_s = latency
    made.outcome = outcome
    made.attempts = 1 if latency < 1 else 3
    made.error_code = code
    made.order_id = f"o{started}" if outcome is Outcome.ACCEPTED else None
    return made


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 0.5) == 50.0
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([], 0.99) is None


def test_p99_counts_only_orders_first_tried_in_the_window() -> None:
    records = [record(s, 0.01) for s in range(10)] + [record(10.0, 5.0), record(-0.5, 9.0)]
    records.append(record(4.0, 2.5, Outcome.FAILED))
    # [T0, T0 + 10): 10 fast ones and the failed one of 2.5 s; the 5 s and 9 s ones are outside.
    assert p99_latency_s(records, T0) == 2.5
    assert p99_latency_s(records, T0 + 100) is None


def test_the_longest_stretch_without_an_accepted_order_spans_refusals_and_failures() -> None:
    records = [
        record(0.0, 0.1),
        record(1.0, 0.1),
        record(2.0, 0.1, Outcome.REFUSED, "insufficient_funds"),
        record(3.0, 4.0, Outcome.FAILED),
        record(8.0, 0.5),
    ]
    # Accepted answers at 0.1, 1.1 and 8.5: the longest stretch is 1.1 -> 8.5.
    length, since = longest_stretch_without_accept(records, T0, T0 + 9.0)
    assert round(length, 6) == 7.4 and since == T0 + 1.1
    # With no accepted order at all, the whole window is one stretch.
    assert longest_stretch_without_accept([], T0, T0 + 5) == (5.0, T0)


def test_summary_counts_outcomes_and_refusal_codes() -> None:
    records = [
        record(0.0, 0.2),
        record(1.0, 2.0),
        record(2.0, 0.1, Outcome.REFUSED, "insufficient_shares"),
        record(3.0, 0.1, Outcome.REFUSED, "insufficient_shares"),
        record(4.0, 10.0, Outcome.FAILED),
    ]
    summary = summarize(records, T0, T0 + 15)
    assert (summary.orders, summary.accepted, summary.refused, summary.failed) == (5, 2, 2, 1)
    assert summary.refused_by_code == {"insufficient_shares": 2}
    assert summary.retried == 2 and summary.p99_ms == 10_000.0
    assert load_problems(records) == [
        f"key k4.0: failed after 3 attempts in 10.0s: {records[-1].last_error}"
    ]
    assert json.loads(json.dumps(summary.as_json()))["failed"] == 1


def test_kill_figures_count_failures_overlapping_the_outage_and_the_time_to_serve_again(
    tmp_path: Path,
) -> None:
    records = [
        record(-2.0, 11.0, Outcome.FAILED),  # in flight when the kill happened
        record(1.0, 3.0),
        record(2.0, 0.05),
        record(12.0, 10.0, Outcome.FAILED),  # after the outage (served again at +4 s, window 10)
        record(30.0, 0.05),
    ]
    kills = [
        KillEvent("api-1", T0 + 30.0, None),
        KillEvent("bridge", T0, T0 + 4.0),
    ]
    figures = kill_figures(kills, records)
    assert [f.service for f in figures] == ["bridge", "api-1"]
    bridge, api = figures
    assert (bridge.failed, bridge.orders_in_window, bridge.p99_ms_in_window) == (1, 2, 3000.0)
    assert bridge.serves_again_after_s == 4.0
    assert (api.failed, api.orders_in_window, api.serves_again_after_s) == (0, 1, None)

    markdown, data = write_figures(kills, records, tmp_path / "out")
    table = markdown.read_text().splitlines()
    assert table[0].startswith("| service | killed at (UTC) | failed after retries")
    assert table[2].startswith("| bridge |") and table[2].endswith("| 1 | 2 | 3000.0 | 4.0 |")
    assert table[3].endswith("| never |")
    assert json.loads(data.read_text())["kills"][0]["failed"] == 1
    assert markdown_table([]).count("\n") == 2


def events(*items: tuple[str, int | None]) -> list[SseEvent]:
    return [SseEvent(T0 + n, kind, event_id) for n, (kind, event_id) in enumerate(items)]


def test_ids_continuing_through_a_resync_after_a_reconnect_are_not_a_gap() -> None:
    seen = events(
        (CONNECT, None),
        ("snapshot", 1),
        ("price", 2),
        ("heartbeat", None),
        (CONNECT, None),
        ("resync", 3),
        ("snapshot", 4),
        ("price", 5),
    )
    analysis = analyse(seen)
    assert (analysis.gaps, analysis.resyncs, analysis.resumed_without_resync) == ([], 1, 0)


def test_a_hole_in_ids_without_a_resync_is_a_problem_and_with_one_is_announced() -> None:
    silent_hole = events((CONNECT, None), ("snapshot", 1), ("price", 2), ("price", 5))
    restarted = events(
        (CONNECT, None), ("snapshot", 1), ("price", 2), (CONNECT, None), ("snapshot", 1)
    )
    announced = events((CONNECT, None), ("snapshot", 1), (CONNECT, None), ("resync", 7))
    hole = analyse(silent_hole).gaps
    assert [(g.expected, g.got, g.announced) for g in hole] == [(3, 5, False)]
    restart = analyse(restarted)
    assert [(g.expected, g.got, g.announced) for g in restart.gaps] == [(3, 1, False)]
    assert restart.resumed_without_resync == 1
    assert [g.announced for g in analyse(announced).gaps] == [True]

    log = ClientLog(0, 1, silent_hole, started_at=T0, stopped_at=T0 + 4)
    assert problems([log]) == ["client 0: id 5 arrived when 3 was due, without a resync"]
    fine = ClientLog(1, 1, announced, started_at=T0, stopped_at=T0 + 4)
    assert problems([fine]) == []


def test_the_longest_silence_ignores_connect_markers_and_counts_heartbeats() -> None:
    seen = [
        SseEvent(T0 + 0.5, "snapshot", 1),
        SseEvent(T0 + 1.0, "heartbeat"),
        SseEvent(T0 + 6.0, CONNECT),  # a reconnect is not something received
        SseEvent(T0 + 8.0, "resync", 2),
    ]
    assert longest_silence(seen, T0, T0 + 9.0) == (7.0, T0 + 1.0)
    log = ClientLog(0, 1, seen, started_at=T0, stopped_at=T0 + 9.0)
    assert problems([log], silence_max_s=5.0) == [
        f"client 0: silent 7.0s from {T0 + 1.0:.3f} (more than 5.0s)"
    ]
    assert problems([log], silence_max_s=7.5) == []


def fix(*fields: tuple[int, str]) -> str:
    body = "\x01".join(f"{tag}={value}" for tag, value in fields)
    return f"20261206-16:00:00.000000 : 8=FIX.4.4\x019=99\x01{body}\x0110=000\x01\n"


def test_the_exchange_view_follows_orders_through_its_fix_log() -> None:
    lines = [
        fix((35, "D"), (49, "BROKER"), (11, "A")),
        fix(
            (35, "8"),
            (49, "EXCHANGE"),
            (11, "A"),
            (37, "O1"),
            (17, "E1"),
            (150, "0"),
            (39, "0"),
            (14, "0"),
        ),
        fix(
            (35, "8"),
            (49, "EXCHANGE"),
            (11, "A"),
            (37, "O1"),
            (17, "E2"),
            (150, "F"),
            (39, "1"),
            (14, "3"),
            (32, "3"),
            (31, "10.5"),
        ),
        # A resend of the same fill (PossDupFlag) and the bridge resending its order.
        fix(
            (35, "8"),
            (49, "EXCHANGE"),
            (43, "Y"),
            (11, "A"),
            (37, "O1"),
            (17, "E2"),
            (150, "F"),
            (39, "1"),
            (14, "3"),
            (32, "3"),
            (31, "10.5"),
        ),
        fix((35, "D"), (49, "BROKER"), (43, "Y"), (11, "A")),
        fix((35, "D"), (49, "BROKER"), (11, "B")),
        fix(
            (35, "8"),
            (49, "EXCHANGE"),
            (11, "B"),
            (37, "O2"),
            (17, "E3"),
            (150, "0"),
            (39, "0"),
            (14, "0"),
        ),
        # B sent again as a new order: the exchange refuses the duplicate.
        fix((35, "D"), (49, "BROKER"), (11, "B")),
        fix(
            (35, "8"),
            (49, "EXCHANGE"),
            (11, "B"),
            (37, "NONE"),
            (17, "E4"),
            (150, "8"),
            (39, "8"),
            (14, "0"),
            (58, "duplicate ClOrdID"),
        ),
        fix(
            (35, "8"),
            (49, "EXCHANGE"),
            (11, "B"),
            (37, "O2"),
            (17, "E5"),
            (150, "C"),
            (39, "C"),
            (14, "0"),
        ),
    ]
    view = exchange_view((parse_fix_line(line) for line in lines), "EXCHANGE")
    assert view.state == {"A": (OrderStatus.PARTIALLY_FILLED, 3), "B": (OrderStatus.EXPIRED, 0)}
    assert list(view.fills) == ["E2"] and view.fills["E2"].price == Decimal("10.5")
    assert view.conflicting_fills == []
    clean = exchange_view((parse_fix_line(line) for line in lines[:7]), "EXCHANGE")
    assert new_order_problems(["A", "B"], clean) == []
    assert new_order_problems(["A", "B", "Z"], clean) == ["ClOrdID Z: acknowledged as new 0 times"]
    assert new_order_problems(["A", "B"], view) == [
        "ClOrdID B: 2 NewOrderSingle messages (not resends)",
        "ClOrdID B: the exchange refused 1 duplicates of it",
    ]
    broker = {"A": ("PARTIALLY_FILLED", 3), "B": ("ACCEPTED", 0), "C": ("SENT", 0)}
    assert state_mismatches(["A", "B", "C", "D"], broker, view) == [
        "order B: ACCEPTED cum_qty 0 here, exchange EXPIRED cum_qty 0",
        "order C: SENT here, never acknowledged by the exchange",
        "order D: accepted but not in the orders table",
    ]

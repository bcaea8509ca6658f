"""An order load as careful clients make it: each order has its own idempotency key and is retried
with that same key on a timeout, a connection error or a 5xx, for up to ``retry_budget_s``.

Several traders place orders concurrently (closed loop, one order in flight per trader, paced
below the per-user limits): market and limit, buys and sells, limits near the last price so some
fill at once and some rest. Each order is recorded with its key, times (epoch seconds, to compare
with kill times taken in other processes), attempts, outcome and latency. The summary functions
work on the records alone, so they are unit-tested with hand-made ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

import httpx

from tests.chaos.users import Trader, on_tick
from tests.chaos.verify import Verify

# A refusal the server may answer while it recovers, and that says "retry": the key is free.
RETRYABLE_CODES = frozenset({"idempotency_race"})
BACKOFF_FIRST_S = 0.05
BACKOFF_MAX_S = 0.5
QUOTES_REFRESH_S = 1.0
# Joining the traders' tasks after stop(): each finishes its order's retries (bounded) first.
STOP_GRACE_S = 5.0


class Outcome(StrEnum):
    """How an order ended for the client."""

    ACCEPTED = "accepted"  # 201 with an order id
    REFUSED = "refused"  # a 4xx that is the client's (a rule: funds, shares, fraud limit...)
    FAILED = "failed"  # no answer but timeouts, connection errors or 5xx within the budget


@dataclass
class OrderRecord:
    """One intended order as the client saw it."""

    key: str
    user_id: int
    body: dict[str, Any]
    started_at: float  # epoch seconds of the first attempt
    finished_at: float = 0.0  # epoch seconds of the final answer (or of giving up)
    latency_s: float = 0.0  # first attempt to final answer, on the monotonic clock
    attempts: int = 0
    outcome: Outcome = Outcome.FAILED
    order_id: str | None = None
    # A FAILED order the client found afterwards by its client order id (``find_failed``):
    # placed after all, the answer lost with the failover that cut the request.
    found_order_id: str | None = None
    status_code: int | None = None  # of the final answer, None when there was none
    error_code: str | None = None  # the API's error code of a refusal
    last_error: str | None = None  # what made the last retry necessary

    def as_json(self) -> dict[str, Any]:
        """The record as plain JSON values."""
        return {
            "key": self.key,
            "user_id": self.user_id,
            "body": self.body,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "latency_s": self.latency_s,
            "attempts": self.attempts,
            "outcome": self.outcome.value,
            "order_id": self.order_id,
            "status_code": self.status_code,
            "error_code": self.error_code,
            "last_error": self.last_error,
        }


@dataclass(frozen=True)
class LoadPlan:
    """What the load does; the defaults stay below the per-user limits of the default settings."""

    symbols: tuple[str, ...] = ("ACME",)
    # Per trader: at most one order per interval (orders_per_minute_max is 60 by default).
    interval_s: float = 1.1
    market_share: float = 0.3
    sell_share: float = 0.4
    quantity_max: int = 5
    # Limits within this band of the last price, either side: about half cross at once.
    band_bps: int = 20
    request_timeout_s: float = 5.0
    retry_budget_s: float = 10.0
    seed: int = 7

    def __post_init__(self) -> None:
        if not self.symbols or self.interval_s <= 0 or self.quantity_max < 1:
            raise ValueError(f"a load needs symbols, a positive interval and quantity: {self}")
        if self.retry_budget_s <= 0 or self.request_timeout_s <= 0:
            raise ValueError(f"timeouts must be positive: {self}")


def _error_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"http_{response.status_code}"
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return f"http_{response.status_code}"


async def place_with_retries(
    http: httpx.AsyncClient,
    trader: Trader,
    body: dict[str, Any],
    *,
    request_timeout_s: float = 5.0,
    retry_budget_s: float = 10.0,
    key: str | None = None,
) -> OrderRecord:
    """Place one order, retrying with the same key on timeouts, connection errors and 5xx."""
    record = OrderRecord(key or uuid.uuid4().hex, trader.user_id, body, time.time())
    headers = {**trader.headers, "X-Idempotency-Key": record.key}
    first = time.monotonic()
    deadline = first + retry_budget_s
    backoff = BACKOFF_FIRST_S
    while True:
        record.attempts += 1
        # No attempt may outlast the budget: the last one gets what is left of it.
        timeout = max(0.05, min(request_timeout_s, deadline - time.monotonic()))
        response: httpx.Response | None = None
        try:
            response = await http.post("/v1/orders", json=body, headers=headers, timeout=timeout)
        except httpx.TransportError as exc:  # timeouts, refused and reset connections
            record.last_error = f"{type(exc).__name__}: {exc}"[:200]
        if response is not None:
            record.status_code = response.status_code
            if response.status_code == 201:
                record.outcome = Outcome.ACCEPTED
                record.order_id = str(response.json()["id"])
                break
            code = _error_code(response)
            if 400 <= response.status_code < 500 and code not in RETRYABLE_CODES:
                record.outcome = Outcome.REFUSED
                record.error_code = code
                break
            record.last_error = f"HTTP {response.status_code} {code}"
        if time.monotonic() + backoff >= deadline:
            record.outcome = Outcome.FAILED
            break
        await asyncio.sleep(backoff)
        backoff = min(BACKOFF_MAX_S, backoff * 2)
    record.latency_s = time.monotonic() - first
    record.finished_at = time.time()
    return record


async def find_failed(
    front_url: str, traders: Sequence[Trader], records: Sequence[OrderRecord], *, verify: Verify
) -> None:
    """Ask, as a client whose request never answered would, whether each FAILED order exists.

    A placement cut by a failover may have committed after the client gave up; its client
    order id finds it (200), or tells it was never placed (404).
    """
    by_user = {t.user_id: t for t in traders}
    async with httpx.AsyncClient(base_url=front_url, verify=verify) as http:
        for record in records:
            if record.outcome is not Outcome.FAILED:
                continue
            trader = by_user[record.user_id]
            response = await http.get(
                f"/v1/orders/by-client-id/{record.body['client_order_id']}",
                headers=trader.headers,
            )
            if response.status_code == 200:
                record.found_order_id = str(response.json()["id"])
            elif response.status_code != 404:
                raise AssertionError(f"asking for {record.key}: {response.status_code}")


class OrderLoad:
    """Traders placing orders concurrently until ``stop()`` or the duration ends."""

    def __init__(
        self,
        front_url: str,
        traders: Sequence[Trader],
        ticks: Mapping[str, Decimal],
        plan: LoadPlan | None = None,
        *,
        verify: Verify = True,
    ) -> None:
        self.front_url = front_url
        self.traders = list(traders)
        self.ticks = dict(ticks)
        self.plan = plan or LoadPlan()
        self.verify = verify
        self.records: list[OrderRecord] = []
        self.prices: dict[str, Decimal] = {}
        self.started_at = 0.0
        self.stopped_at = 0.0
        self._stop = asyncio.Event()
        self._rng = random.Random(self.plan.seed)  # test data, not secrets

    def stop(self) -> None:
        """Start no new order; orders in flight finish their retries."""
        self._stop.set()

    def _body(self, trader: Trader) -> dict[str, Any] | None:
        plan, rng = self.plan, self._rng
        symbol = rng.choice(plan.symbols)
        last = self.prices.get(symbol)
        if last is None:
            return None
        sell = trader.shares.get(symbol, 0) > 0 and rng.random() < plan.sell_share
        body: dict[str, Any] = {
            "symbol": symbol,
            "side": "SELL" if sell else "BUY",
            "quantity": rng.randint(1, plan.quantity_max),
            "type": "MARKET",
            # The client's own id: after a request that never answered, it asks by this id.
            "client_order_id": uuid.uuid4().hex,
        }
        if rng.random() >= plan.market_share:
            shift = Decimal(rng.randint(-plan.band_bps, plan.band_bps)) / 10_000
            body["type"] = "LIMIT"
            body["price"] = str(on_tick(last * (1 + shift), self.ticks[symbol], up=not sell))
        return body

    async def _refresh_prices(self, http: httpx.AsyncClient) -> None:
        """Keep the last prices fresh from the quotes API; a failed read keeps the old ones."""
        headers = self.traders[0].headers
        params = {"symbols": ",".join(self.plan.symbols)}
        while not self._stop.is_set():
            with contextlib.suppress(httpx.TransportError, ValueError, KeyError):
                response = await http.get("/v1/market/quotes", params=params, headers=headers)
                if response.status_code == 200:
                    for quote in response.json()["quotes"]:
                        self.prices[quote["symbol"]] = Decimal(quote["price"])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), QUOTES_REFRESH_S)

    async def _trade(self, trader: Trader, until: float) -> None:
        plan = self.plan
        async with httpx.AsyncClient(base_url=self.front_url, verify=self.verify) as http:
            while not self._stop.is_set() and time.monotonic() < until:
                next_at = time.monotonic() + plan.interval_s
                body = self._body(trader)
                if body is not None:
                    self.records.append(
                        await place_with_retries(
                            http,
                            trader,
                            body,
                            request_timeout_s=plan.request_timeout_s,
                            retry_budget_s=plan.retry_budget_s,
                        )
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._stop.wait(), max(0.0, min(next_at, until) - time.monotonic())
                    )

    async def run(self, duration_s: float) -> list[OrderRecord]:
        """Place orders for at most ``duration_s`` (or until ``stop()``); return the records."""
        if not self.traders:
            raise ValueError("a load needs at least one trader")
        self.started_at = time.time()
        until = time.monotonic() + duration_s
        async with httpx.AsyncClient(
            base_url=self.front_url, verify=self.verify, timeout=self.plan.request_timeout_s
        ) as http:
            prices = asyncio.create_task(self._refresh_prices(http))
            try:
                await asyncio.wait_for(
                    asyncio.gather(*(self._trade(t, until) for t in self.traders)),
                    duration_s + self.plan.retry_budget_s + STOP_GRACE_S,
                )
            finally:
                self._stop.set()
                await prices
        self.stopped_at = time.time()
        return self.records


# Summaries: pure functions of the records.


def percentile(values: Iterable[float], fraction: float) -> float | None:
    """The nearest-rank percentile (``fraction`` in (0, 1]); None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def failures(records: Iterable[OrderRecord]) -> list[OrderRecord]:
    """Orders that failed after every retry."""
    return [r for r in records if r.outcome is Outcome.FAILED]


def p99_latency_s(
    records: Iterable[OrderRecord], t0: float, window_s: float = 10.0
) -> float | None:
    """p99 latency of the orders first tried in [t0, t0 + window_s), whatever their outcome."""
    return percentile((r.latency_s for r in records if t0 <= r.started_at < t0 + window_s), 0.99)


def longest_stretch_without_accept(
    records: Iterable[OrderRecord], start: float, end: float
) -> tuple[float, float]:
    """(length, start) of the longest time in [start, end] in which no order was accepted.

    An order counts as accepted when its answer arrived (``finished_at``).
    """
    accepted = (r.finished_at for r in records if r.outcome is Outcome.ACCEPTED)
    return longest_gap(accepted, start, end)


def longest_gap(times: Iterable[float], start: float, end: float) -> tuple[float, float]:
    """(length, start) of the longest stretch of [start, end] with none of ``times`` in it."""
    edges = [start, *sorted(t for t in times if start <= t <= end), end]
    best = (0.0, start)
    for before, after in itertools.pairwise(edges):
        if after - before > best[0]:
            best = (after - before, before)
    return best


@dataclass(frozen=True)
class LoadSummary:
    """The figures of one load run."""

    orders: int
    accepted: int
    refused: int
    failed: int
    refused_by_code: dict[str, int] = field(default_factory=dict)
    retried: int = 0  # orders that needed more than one attempt
    p50_ms: float | None = None
    p99_ms: float | None = None
    longest_without_accept_s: float = 0.0
    longest_without_accept_from: float = 0.0

    def as_json(self) -> dict[str, Any]:
        """The summary as plain JSON values."""
        return {
            "orders": self.orders,
            "accepted": self.accepted,
            "refused": self.refused,
            "failed": self.failed,
            "refused_by_code": self.refused_by_code,
            "retried": self.retried,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "longest_without_accept_s": self.longest_without_accept_s,
            "longest_without_accept_from": self.longest_without_accept_from,
        }


def summarize(records: Sequence[OrderRecord], start: float, end: float) -> LoadSummary:
    """Counts, latency percentiles and the longest stretch without an accepted order."""
    outcomes = Counter(r.outcome for r in records)
    latencies = [r.latency_s * 1000 for r in records]
    gap, gap_from = longest_stretch_without_accept(records, start, end)
    return LoadSummary(
        orders=len(records),
        accepted=outcomes[Outcome.ACCEPTED],
        refused=outcomes[Outcome.REFUSED],
        failed=outcomes[Outcome.FAILED],
        refused_by_code=dict(
            Counter(r.error_code or "" for r in records if r.outcome is Outcome.REFUSED)
        ),
        retried=sum(1 for r in records if r.attempts > 1),
        p50_ms=percentile(latencies, 0.5),
        p99_ms=percentile(latencies, 0.99),
        longest_without_accept_s=gap,
        longest_without_accept_from=gap_from,
    )

"""Market-data records: ``md.ticks`` (the firehose) and ``md.conflated`` (latest per symbol)."""

from __future__ import annotations

from core.contracts._wire import DecimalStr, Record, check_int, check_price, check_symbol


class Tick(Record, frozen=True, kw_only=True, tag="tick.v1", gc=False):
    """One trade print from the exchange; Kafka key = symbol."""

    symbol: str
    price: DecimalStr
    size: int  # shares
    ts_event_ns: int  # exchange time, ns since the Unix epoch
    seq: int  # exchange sequence number, per symbol

    def __post_init__(self) -> None:
        check_symbol(self.symbol)
        check_price(self.price, "price")
        # Runs for every tick decoded: the common case in one expression, not three calls.
        size, ts, seq = self.size, self.ts_event_ns, self.seq
        if not (
            type(size) is int
            and size >= 1
            and type(ts) is int
            and ts >= 1
            and type(seq) is int
            and seq >= 0
        ):
            check_int(size, "size", 1)
            check_int(ts, "ts_event_ns", 1)
            check_int(seq, "seq", 0)

    def kafka_key(self) -> bytes:
        """The Kafka key of this record: the symbol."""
        return self.symbol.encode()


class ConflatedPrice(Record, frozen=True, kw_only=True, tag="conflated_price.v1", gc=False):
    """The latest tick of a symbol in one conflation interval; Kafka key = symbol."""

    symbol: str
    price: DecimalStr
    size: int  # shares
    ts_event_ns: int  # exchange time of the tick kept
    seq: int  # exchange sequence number of the tick kept
    ts_conflated_ns: int  # when the conflate agent emitted it (its own clock)

    def __post_init__(self) -> None:
        check_symbol(self.symbol)
        check_price(self.price, "price")
        check_int(self.size, "size", 1)
        check_int(self.ts_event_ns, "ts_event_ns", 1)
        check_int(self.seq, "seq", 0)
        check_int(self.ts_conflated_ns, "ts_conflated_ns", 1)

    def kafka_key(self) -> bytes:
        """The Kafka key of this record: the symbol."""
        return self.symbol.encode()

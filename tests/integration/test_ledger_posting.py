"""core.ledger.post: balanced postings that keep wallets equal to the ledger, retries harmless."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from core.ledger import AccountKind, LedgerError, TxnKind, open_user_accounts, post, system, user
from infra.migrate import load_invariants

pytestmark = pytest.mark.integration

AVAILABLE, LOCKED = AccountKind.CASH_AVAILABLE, AccountKind.CASH_LOCKED
GATEWAY = AccountKind.PAYMENT_GATEWAY_CLEARING


async def _new_user(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> int:
    cursor = await conn.execute(
        "INSERT INTO users (email, password_hash) VALUES (gen_random_uuid() || '@x.io', 'h')"
        " RETURNING id"
    )
    row = await cursor.fetchone()
    assert row is not None
    user_id = int(str(row[0]))
    await open_user_accounts(conn, user_id, "USD")
    return user_id


async def _wallet(
    conn: psycopg.AsyncConnection[tuple[object, ...]], user_id: int
) -> tuple[object, ...]:
    cursor = await conn.execute(
        "SELECT balance, locked_balance FROM wallets WHERE user_id = %s", (user_id,)
    )
    row = await cursor.fetchone()
    assert row is not None
    return row


async def _violations(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> dict[str, int]:
    found = {}
    for name, query in load_invariants().items():
        rows = await (await conn.execute(query)).fetchall()
        if rows:
            found[name] = len(rows)
    return found


async def test_deposit_then_reserve_moves_money_and_keeps_every_invariant(db_dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        user_id = await _new_user(conn)
        amount = Decimal("100.0000")
        await post(
            conn,
            TxnKind.DEPOSIT,
            [user(AVAILABLE, user_id, amount), system(GATEWAY, -amount)],
            currency="USD",
            external_ref="pay-1",
        )
        await conn.commit()
        reserve = Decimal("40.2500")
        await post(
            conn,
            TxnKind.ADJUSTMENT,
            [user(AVAILABLE, user_id, -reserve), user(LOCKED, user_id, reserve)],
            currency="USD",
        )
        await conn.commit()

        assert await _wallet(conn, user_id) == (Decimal("59.7500"), Decimal("40.2500"))
        assert await _violations(conn) == {}


async def test_a_replayed_external_ref_posts_nothing(db_dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        user_id = await _new_user(conn)
        legs = [user(AVAILABLE, user_id, Decimal(5)), system(GATEWAY, Decimal(-5))]
        first = await post(conn, TxnKind.DEPOSIT, legs, currency="USD", external_ref="p")
        again = await post(conn, TxnKind.DEPOSIT, legs, currency="USD", external_ref="p")
        await conn.commit()

        assert first is not None
        assert again is None
        assert await _wallet(conn, user_id) == (Decimal(5), Decimal(0))


async def test_unbalanced_or_float_postings_are_refused_before_sql(db_dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        user_id = await _new_user(conn)
        with pytest.raises(LedgerError, match="sum to zero"):
            await post(
                conn,
                TxnKind.ADJUSTMENT,
                [user(AVAILABLE, user_id, Decimal(5)), system(GATEWAY, Decimal(-4))],
                currency="USD",
            )
        with pytest.raises(LedgerError, match="not money"):
            await post(
                conn,
                TxnKind.ADJUSTMENT,
                [
                    user(AVAILABLE, user_id, Decimal("0.00001")),
                    system(GATEWAY, Decimal("-0.00001")),
                ],
                currency="USD",
            )


async def test_overdrawing_a_wallet_fails_the_whole_transaction(db_dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        user_id = await _new_user(conn)
        await conn.commit()
        with pytest.raises(psycopg.errors.CheckViolation):
            await post(
                conn,
                TxnKind.ADJUSTMENT,
                [user(AVAILABLE, user_id, Decimal(-1)), user(LOCKED, user_id, Decimal(1))],
                currency="USD",
            )
        await conn.rollback()

        assert await _wallet(conn, user_id) == (Decimal(0), Decimal(0))
        count = await (await conn.execute("SELECT count(*) FROM journal_txns")).fetchone()
        assert count == (0,)

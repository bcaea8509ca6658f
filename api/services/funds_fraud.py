"""The withdrawal fraud rule: a new account may not withdraw right after a deposit."""

from __future__ import annotations

from datetime import datetime, timedelta

from api.exceptions import FraudRuleError
from core.db import AsyncConn
from core.settings import Settings

RULE_CODE = "fraud_withdrawal_after_deposit"


def withdrawal_blocked(
    *,
    account_created_at: datetime,
    last_deposit_at: datetime | None,
    now: datetime,
    new_account_days: int,
    block_s: int,
) -> bool:
    """Whether a new account's withdrawal comes too soon after its last deposit."""
    if last_deposit_at is None:
        return False
    is_new = now - account_created_at < timedelta(days=new_account_days)
    return is_new and now - last_deposit_at < timedelta(seconds=block_s)


async def check_withdrawal(conn: AsyncConn, settings: Settings, user_id: int) -> None:
    """Raise FraudRuleError when the rule refuses a withdrawal by this user now."""
    # The last deposit is the newest DEPOSIT journal transaction on the user's accounts: the
    # ledger, not the intents, says when money actually arrived.
    cursor = await conn.execute(
        "SELECT u.created_at, now(),"
        " (SELECT max(t.created_at) FROM ledger_accounts a"
        "   JOIN journal_entries e ON e.account_id = a.id"
        "   JOIN journal_txns t ON t.id = e.txn_id"
        "   WHERE a.user_id = u.id AND t.kind = 'DEPOSIT')"
        " FROM users u WHERE u.id = %s",
        (user_id,),
    )
    row = await cursor.fetchone()
    if row is None:
        return
    created_at, now, last_deposit_at = row
    if withdrawal_blocked(
        account_created_at=created_at,
        last_deposit_at=last_deposit_at,
        now=now,
        new_account_days=settings.new_account_days,
        block_s=settings.withdrawal_after_deposit_block_s,
    ):
        raise FraudRuleError(
            f"accounts younger than {settings.new_account_days} days cannot withdraw within "
            f"{settings.withdrawal_after_deposit_block_s}s of a deposit",
            code=RULE_CODE,
        )

"""The simulated KYC provider: a background task that moves PENDING records to a decision.

Every ``kyc_review_poll_interval_ms`` it claims up to ``kyc_review_batch_max`` records that have
waited ``kyc_review_delay_ms`` with ``FOR UPDATE SKIP LOCKED``, so any number of API nodes can
run it side by side without reviewing a record twice. Rules, in order: age at least
``kyc_age_min_years``; national id matching ``kyc_national_id_pattern`` (the market profile's
format unless set); name not on
``kyc_sanctioned_names`` (case and spacing ignored). A record that cannot be processed (say, its
key is not configured here) is logged, left PENDING and retried after ``kyc_review_retry_ms``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from datetime import UTC, date, datetime

from api.security import crypto
from api.services.kyc import FIELDS, KycDetails, age_years, field_aad
from core.db import AsyncConn, AsyncPool
from core.settings import Settings

log = logging.getLogger(__name__)

VERIFIED = "VERIFIED"
REJECTED = "REJECTED"

# The column pairs follow the order of FIELDS.
_CLAIM = (
    "SELECT user_id, key_id, legal_name_ciphertext, legal_name_nonce,"
    " date_of_birth_ciphertext, date_of_birth_nonce, national_id_ciphertext, national_id_nonce,"
    " address_ciphertext, address_nonce"
    " FROM kyc_records WHERE status = 'PENDING'"
    " AND submitted_at <= now() - make_interval(secs => %(delay_s)s)"
    # updated_at moves past submitted_at only when a review failed: then wait before retrying.
    " AND (updated_at = submitted_at OR updated_at <= now() - make_interval(secs => %(retry_s)s))"
    " ORDER BY submitted_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED"
)


def _name_key(name: str) -> str:
    return " ".join(name.casefold().split())


def rejection_reason(details: KycDetails, today: date, settings: Settings) -> str | None:
    """Why the provider rejects a submission, or None when it verifies it."""
    if age_years(details.date_of_birth, today) < settings.kyc_age_min_years:
        return f"age: applicant is under {settings.kyc_age_min_years} years old"
    national_id = "".join(details.national_id.split()).upper()
    if re.fullmatch(settings.kyc_national_id_pattern, national_id) is None:
        return f"national_id: not in the expected format ({settings.kyc_national_id_format})"
    sanctioned = {_name_key(name) for name in settings.kyc_sanctioned_names}
    if _name_key(details.full_name) in sanctioned:
        return "sanctions: the name is on the sanctions list"
    return None


def _open(settings: Settings, row: tuple[object, ...]) -> KycDetails:
    user_id, key_id = int(str(row[0])), str(row[1])
    ring = crypto.keyring(settings, crypto.PURPOSE_KYC)
    values: dict[str, str] = {}
    for i, field in enumerate(FIELDS):
        ciphertext, nonce = row[2 + 2 * i], row[3 + 2 * i]
        assert isinstance(ciphertext, bytes) and isinstance(nonce, bytes)
        sealed = crypto.Sealed(ciphertext, nonce, key_id)
        values[field] = crypto.unseal(ring, sealed, field_aad(user_id, field)).decode()
    return KycDetails(
        full_name=values["legal_name"],
        date_of_birth=date.fromisoformat(values["date_of_birth"]),
        national_id=values["national_id"],
        address=values["address"],
    )


async def _review_one(
    conn: AsyncConn, settings: Settings, row: tuple[object, ...], today: date
) -> None:
    user_id = int(str(row[0]))
    try:
        async with conn.transaction():  # a savepoint: one bad record cannot spoil the batch
            reason = rejection_reason(_open(settings, row), today, settings)
            await conn.execute(
                "UPDATE kyc_records SET status = %s, rejection_reason = %s,"
                " reviewed_at = now(), updated_at = now() WHERE user_id = %s",
                (REJECTED if reason else VERIFIED, reason, user_id),
            )
        log.info("kyc reviewed", extra={"user_id": user_id, "verified": reason is None})
    except Exception:
        log.exception("kyc review failed; will retry", extra={"user_id": user_id})
        await conn.execute(
            "UPDATE kyc_records SET updated_at = now() WHERE user_id = %s", (user_id,)
        )


async def review_batch(pool: AsyncPool, settings: Settings) -> int:
    """Claim and decide one batch of due PENDING records; how many were claimed."""
    today = datetime.now(UTC).date()
    params = {
        "delay_s": settings.kyc_review_delay_ms / 1000,
        "retry_s": settings.kyc_review_retry_ms / 1000,
        "limit": settings.kyc_review_batch_max,
    }
    async with pool.connection() as conn, conn.transaction():
        cursor = await conn.execute(_CLAIM, params)
        rows = await cursor.fetchall()
        for row in rows:
            await _review_one(conn, settings, row, today)
    return len(rows)


async def run_reviewer(pool: AsyncPool, settings: Settings, stop: asyncio.Event) -> None:
    """Review batches until ``stop`` is set; errors are logged and the loop goes on."""
    interval_s = settings.kyc_review_poll_interval_ms / 1000
    while not stop.is_set():
        try:
            claimed = await review_batch(pool, settings)
        except Exception:
            log.exception("kyc review batch failed")
            claimed = 0
        if claimed < settings.kyc_review_batch_max:  # a full batch means more may be waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)

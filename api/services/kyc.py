"""KYC submissions: PII sealed field by field (AES-256-GCM) and read back only by its owner.

The reviewer (``api/services/kyc_review.py``) decides later; here a submission is only
validated for shape and stored as PENDING. A rejected user may submit again; nobody else may.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from api.exceptions import ConflictError, InvalidRequestError, NotFoundError
from api.security import crypto
from core.db import AsyncConn
from core.settings import Settings

log = logging.getLogger(__name__)

# Column stems in kyc_records; each has a _ciphertext and a _nonce column.
FIELDS = ("legal_name", "date_of_birth", "national_id", "address")


@dataclass(frozen=True, slots=True)
class KycDetails:
    """The PII of one submission, in clear (only ever in memory)."""

    full_name: str
    date_of_birth: date
    national_id: str
    address: str

    def as_fields(self) -> dict[str, str]:
        """The values to encrypt, by column stem."""
        return {
            "legal_name": self.full_name,
            "date_of_birth": self.date_of_birth.isoformat(),
            "national_id": self.national_id,
            "address": self.address,
        }


@dataclass(frozen=True, slots=True)
class KycStatus:
    """What a user sees of their own KYC record."""

    status: str
    rejection_reason: str | None
    submitted_at: datetime
    reviewed_at: datetime | None
    full_name_masked: str | None


def field_aad(user_id: int, field: str) -> bytes:
    """The associated data binding a ciphertext to its user and column."""
    return f"kyc_records:{user_id}:{field}".encode()


def age_years(born: date, today: date) -> int:
    """Full years between a birth date and today."""
    had_birthday = (today.month, today.day) >= (born.month, born.day)
    return today.year - born.year - (0 if had_birthday else 1)


def normalise(details: KycDetails, today: date, settings: Settings) -> KycDetails:
    """Trimmed values and an upper-case id without spaces; InvalidRequestError if implausible."""
    if details.date_of_birth > today:
        raise InvalidRequestError("date_of_birth is in the future", code="invalid_kyc")
    if age_years(details.date_of_birth, today) > settings.kyc_age_max_years:
        raise InvalidRequestError(
            f"date_of_birth is more than {settings.kyc_age_max_years} years ago",
            code="invalid_kyc",
        )
    normalised = KycDetails(
        full_name=" ".join(details.full_name.split()),
        date_of_birth=details.date_of_birth,
        national_id="".join(details.national_id.split()).upper(),
        address=details.address.strip(),
    )
    if not (normalised.full_name and normalised.national_id and normalised.address):
        raise InvalidRequestError("full_name, national_id and address must not be blank")
    return normalised


async def submit(
    conn: AsyncConn, settings: Settings, user_id: int, details: KycDetails, today: date
) -> None:
    """Store a submission as PENDING; ConflictError unless there is none or it was REJECTED."""
    details = normalise(details, today, settings)
    ring = crypto.keyring(settings, crypto.PURPOSE_KYC)
    sealed = {
        field: crypto.seal(ring, value.encode(), field_aad(user_id, field))
        for field, value in details.as_fields().items()
    }
    columns = [f"{f}_{part}" for f in FIELDS for part in ("ciphertext", "nonce")]
    values: list[object] = [user_id, ring.current_id]
    for field in FIELDS:
        values += [sealed[field].ciphertext, sealed[field].nonce]
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns)
    query = (
        f"INSERT INTO kyc_records (user_id, key_id, {', '.join(columns)})"  # noqa: S608 - fixed names
        f" VALUES ({', '.join(['%s'] * (2 + len(columns)))})"
        f" ON CONFLICT (user_id) DO UPDATE SET {updates}, key_id = excluded.key_id,"
        " status = 'PENDING', rejection_reason = NULL, reviewed_at = NULL,"
        " submitted_at = now(), updated_at = now()"
        " WHERE kyc_records.status = 'REJECTED' RETURNING user_id"
    )
    async with conn.transaction():
        cursor = await conn.execute(query, values)
        row = await cursor.fetchone()
    if row is None:
        raise ConflictError(
            "KYC is already submitted; only a rejected submission can be replaced",
            code="kyc_submitted",
        )
    log.info("kyc submitted", extra={"user_id": user_id})


def mask_name(name: str) -> str:
    """The first letter of each word, the rest starred: ``J*** D**``."""
    return " ".join(word[0] + "*" * (len(word) - 1) for word in name.split())


async def status(conn: AsyncConn, settings: Settings, user_id: int) -> KycStatus:
    """The caller's own KYC record; NotFoundError when they have not submitted."""
    cursor = await conn.execute(
        "SELECT status, rejection_reason, submitted_at, reviewed_at, key_id,"
        " legal_name_ciphertext, legal_name_nonce FROM kyc_records WHERE user_id = %s",
        (user_id,),
    )
    row = await cursor.fetchone()
    await conn.commit()
    if row is None:
        raise NotFoundError("no KYC submission; POST /v1/kyc first", code="kyc_not_found")
    masked: str | None = None
    try:
        sealed = crypto.Sealed(bytes(row[5]), bytes(row[6]), str(row[4]))
        name = crypto.unseal(
            crypto.keyring(settings, crypto.PURPOSE_KYC), sealed, field_aad(user_id, "legal_name")
        )
        masked = mask_name(name.decode())
    except crypto.DecryptionError:
        # The status is still worth answering; the operator learns about the key from the log.
        log.warning("cannot decrypt a KYC name", extra={"user_id": user_id})
    return KycStatus(
        status=str(row[0]),
        rejection_reason=None if row[1] is None else str(row[1]),
        submitted_at=row[2],
        reviewed_at=row[3],
        full_name_masked=masked,
    )

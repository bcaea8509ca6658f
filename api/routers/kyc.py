"""Routes for KYC: submit the caller's details, read the caller's status."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ConnDep, CurrentPrincipal, SettingsDep
from api.errors import documented
from api.services import kyc

router = APIRouter(prefix="/v1/kyc", tags=["kyc"])

NAME_CHARS_MAX = 200
NATIONAL_ID_CHARS_MAX = 32
ADDRESS_CHARS_MAX = 500


class KycRequest(BaseModel):
    """The applicant's details; each field is encrypted before it is stored."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "full_name": "Alice Example",
                    "date_of_birth": "1990-04-01",
                    "national_id": "123-45-6789",
                    "address": "1 Market Street, New York",
                }
            ]
        }
    )

    full_name: Annotated[str, Field(min_length=1, max_length=NAME_CHARS_MAX)]
    date_of_birth: date
    national_id: Annotated[
        str,
        Field(
            min_length=1,
            max_length=NATIONAL_ID_CHARS_MAX,
            description="In the market profile's format: SSN 999-99-9999 on NYSE,"
            " PAN AAAAA9999A on NSE; spaces and letter case are ignored.",
        ),
    ]
    address: Annotated[str, Field(min_length=1, max_length=ADDRESS_CHARS_MAX)]


class KycSubmitted(BaseModel):
    """The submission is queued for review."""

    status: str = "PENDING"


class KycStatusResponse(BaseModel):
    """The caller's KYC state; the name is masked, other PII is never returned."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "REJECTED",
                    "rejection_reason": "age: applicant is under 18 years old",
                    "submitted_at": "2024-09-15T09:15:00Z",
                    "reviewed_at": "2024-09-15T09:15:01Z",
                    "full_name_masked": "A**** E******",
                }
            ]
        }
    )

    status: str
    rejection_reason: str | None
    submitted_at: datetime
    reviewed_at: datetime | None
    full_name_masked: str | None


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses={409: documented("Already submitted (only a rejected one can be replaced)")},
)
async def submit(
    body: KycRequest, principal: CurrentPrincipal, conn: ConnDep, settings: SettingsDep
) -> KycSubmitted:
    """Submit KYC details; a simulated provider reviews them shortly (poll GET /v1/kyc)."""
    details = kyc.KycDetails(
        full_name=body.full_name,
        date_of_birth=body.date_of_birth,
        national_id=body.national_id,
        address=body.address,
    )
    await kyc.submit(conn, settings, principal.user_id, details, datetime.now(UTC).date())
    return KycSubmitted()


@router.get("", responses={404: documented("Nothing submitted yet")})
async def read(
    principal: CurrentPrincipal, conn: ConnDep, settings: SettingsDep
) -> KycStatusResponse:
    """The caller's own KYC status."""
    found = await kyc.status(conn, settings, principal.user_id)
    return KycStatusResponse(
        status=found.status,
        rejection_reason=found.rejection_reason,
        submitted_at=found.submitted_at,
        reviewed_at=found.reviewed_at,
        full_name_masked=found.full_name_masked,
    )

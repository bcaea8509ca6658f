"""Routes for API keys: create (shown once), list, revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ConnDep, CurrentPrincipal, SettingsDep, TwoFactorPrincipal
from api.errors import documented
from api.exceptions import ForbiddenError
from api.security import api_keys

router = APIRouter(prefix="/v1/api-keys", tags=["api-keys"])

NAME_CHARS_MAX = 100
# The largest id PostgreSQL's bigint holds; larger path values are refused as 422, not 500.
BIGINT_MAX = 2**63 - 1


class CreateKeyRequest(BaseModel):
    """A name to tell the key apart later."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "trading bot"}]})

    name: Annotated[
        str, Field(min_length=1, max_length=NAME_CHARS_MAX, pattern=r"^[^\x00-\x1f\x7f]+$")
    ]


class ApiKeyResponse(BaseModel):
    """A key as listed: never the secret."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class CreatedKeyResponse(BaseModel):
    """A new key: ``key`` is shown in this answer only; send it as ``X-API-Key``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "name": "trading bot",
                    "key": "bk_3f2a9c1b7e4d_Vn3...",
                    "prefix": "3f2a9c1b7e4d",
                    "created_at": "2024-09-15T09:15:00Z",
                }
            ]
        }
    )

    id: int
    name: str
    key: str
    prefix: str
    created_at: datetime


def _listed(info: api_keys.ApiKeyInfo) -> ApiKeyResponse:
    return ApiKeyResponse(
        id=info.id,
        name=info.name,
        prefix=info.prefix,
        created_at=info.created_at,
        last_used_at=info.last_used_at,
        revoked_at=info.revoked_at,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={403: documented("Needs a token that passed 2FA")},
)
async def create_key(
    body: CreateKeyRequest, principal: TwoFactorPrincipal, conn: ConnDep, settings: SettingsDep
) -> CreatedKeyResponse:
    """Create a key for programmatic access; it acts with the rights of a 2FA session."""
    if principal.api_key_id is not None:
        # A leaked key must not be able to mint more keys: that needs the person's login.
        raise ForbiddenError("API keys are created with an access token, not with an API key")
    info, key = await api_keys.create_api_key(
        conn, principal.user_id, body.name, settings.api_keys_per_user_max
    )
    return CreatedKeyResponse(
        id=info.id, name=info.name, key=key, prefix=info.prefix, created_at=info.created_at
    )


@router.get("")
async def list_keys(principal: CurrentPrincipal, conn: ConnDep) -> list[ApiKeyResponse]:
    """The caller's keys, newest first, revoked ones included (secrets are never shown)."""
    return [_listed(info) for info in await api_keys.list_api_keys(conn, principal.user_id)]


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: documented("No such key for this user")},
)
async def revoke_key(
    key_id: Annotated[int, Path(ge=1, le=BIGINT_MAX)], principal: CurrentPrincipal, conn: ConnDep
) -> Response:
    """Revoke one of the caller's keys at once; revoking again is harmless."""
    await api_keys.revoke_api_key(conn, principal.user_id, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

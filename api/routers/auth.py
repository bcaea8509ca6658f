"""Routes for auth."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/auth", tags=["auth"])

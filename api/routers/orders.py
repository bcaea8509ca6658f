"""Routes for orders."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/orders", tags=["orders"])

"""Errors of the reconciliation pipeline."""

from __future__ import annotations


class ReconciliationError(Exception):
    """Base of the pipeline's errors."""


class ReportFormatError(ReconciliationError):
    """A trade report file that is not a trade report (wrong header, unreadable)."""

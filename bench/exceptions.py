"""The errors the benchmark harness raises on purpose."""

from __future__ import annotations

from core.exceptions import BrokerError


class BenchError(BrokerError):
    """A benchmark or ceiling could not be measured; the message says which step failed and why."""


class StackNotRunningError(BenchError):
    """PostgreSQL or Kafka does not answer.

    Start the development stack with ``python -m infra start`` (``python -m infra status`` says
    which service is down), then run the benchmark again.
    """


class ToolError(BenchError):
    """An external tool (pgbench) failed or printed output the harness cannot read.

    The message carries the command's exit code and the tail of its output; run the command by
    hand to see the whole of it.
    """

"""The README's first session runs as written, and the demo trader is ready to trade.

The session is the first ``bash`` block under "## A first session" in README.md, run with bash
against the system the run command starts, so the README cannot drift from the API.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time

import httpx
import pyotp
import pytest

from core.settings import PROJECT_ROOT, Settings
from core.tls import client_ssl_context
from infra import demo

pytestmark = pytest.mark.e2e

SESSION_HEADING = "## A first session"
SESSION_TIMEOUT_S = 240
TOTP_STEP_S = 30


def readme_session() -> str:
    """The shell block of the README's first session."""
    text = (PROJECT_ROOT / "README.md").read_text()
    after = text[text.index(SESSION_HEADING) :]
    match = re.search(r"```bash\n(.*?)```", after, re.DOTALL)
    assert match, "no bash block under the first-session heading"
    return match.group(1)


def test_the_readme_session_runs_as_written_to_a_filled_order(topology: Settings) -> None:
    env = {
        **os.environ,
        "B": topology.front_url,
        "CURL_CA_BUNDLE": str(topology.ca_cert_path),
    }
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", readme_session()],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SESSION_TIMEOUT_S,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r'"symbol": "ACME",\s*"quantity": 2', result.stdout), result.stdout[-2000:]
    assert "event: snapshot" in result.stdout or "data:" in result.stdout  # the price stream


async def _kyc_and_holdings(
    settings: Settings, trader: demo.DemoTrader
) -> tuple[str, dict[str, int]]:
    async with httpx.AsyncClient(
        base_url=settings.front_url, verify=client_ssl_context(settings), timeout=30
    ) as http:
        body = {
            "email": trader.email,
            "password": trader.password,
            # The next step's code: this step's was used by the checks before (once only).
            "totp_code": pyotp.TOTP(trader.totp_secret).at(time.time() + TOTP_STEP_S),
        }
        token = (await http.post("/v1/auth/login", json=body)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        kyc = (await http.get("/v1/kyc", headers=headers)).json()
        portfolio = (await http.get("/v1/portfolio", headers=headers)).json()
    return str(kyc["status"]), {h["symbol"]: int(h["quantity"]) for h in portfolio["holdings"]}


def test_the_demo_trader_is_made_once_and_can_trade_at_once(topology: Settings) -> None:
    made = asyncio.run(demo.ensure(topology))
    again = asyncio.run(demo.ensure(topology))
    kyc, held = asyncio.run(_kyc_and_holdings(topology, made))

    assert again == made  # found, not made twice
    assert kyc == "VERIFIED"
    assert held == dict(topology.demo_holdings)
    lines = demo.describe(topology, made)
    assert any(made.email in line for line in lines)
    assert any("make totp" in line for line in lines)

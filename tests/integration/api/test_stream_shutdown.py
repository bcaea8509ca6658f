"""Stopping the API (SIGTERM) ends the open price streams cleanly, so the process can exit."""

from __future__ import annotations

import signal
import subprocess

import pytest

from api.security.tokens import issue_access_token
from core.settings import Settings
from tests.integration.api.conftest import MakeUser
from tests.integration.api.test_stream_slow_client import api_process  # noqa: F401 - fixture
from tests.integration.api.test_stream_support import RawSse

pytestmark = pytest.mark.integration

EXIT_TIMEOUT_S = 20


async def test_a_stopping_server_ends_its_price_streams(
    api_process: tuple[subprocess.Popen[bytes], Settings],  # noqa: F811 - the fixture
    make_user: MakeUser,
) -> None:
    process, settings = api_process
    made = await make_user()
    token = issue_access_token(settings, made.id, two_factor=True)
    sse = await RawSse.open(
        f"http://127.0.0.1:{settings.api_port}",
        "/v1/stream/prices?symbols=ACME,ALPHA",
        {"Authorization": f"Bearer {token}"},
    )
    assert (await sse.next_event()).event == "snapshot"

    process.send_signal(signal.SIGTERM)
    # The stream ends with the terminating chunk (a stream left open would only get heartbeats).
    with pytest.raises(EOFError):
        while True:
            await sse.next(timeout_s=EXIT_TIMEOUT_S)
    # uvicorn re-raises the signal once its graceful shutdown is done.
    assert process.wait(timeout=EXIT_TIMEOUT_S) in (0, -signal.SIGTERM)
    sse.close()

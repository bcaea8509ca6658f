"""What the bridge derives from ``Settings``: its state folder and the QuickFIX initiator config."""

from __future__ import annotations

import sys
from pathlib import Path

from core.settings import Settings
from fixbridge.bridge.exceptions import BridgeConfigError

BEGIN_STRING = "FIX.4.4"


def data_dictionary_path() -> Path:
    """The FIX 4.4 data dictionary shipped with quickfix-ssl in this environment."""
    return Path(sys.prefix) / "share" / "quickfix" / "FIX44.xml"


def bridge_dir(settings: Settings) -> Path:
    """The bridge's own state: the FIX store (sequence numbers, sent messages) and log."""
    return settings.state_dir / "bridge"


def initiator_config(settings: Settings) -> str:
    """The QuickFIX initiator settings (INI text) of the bridge's one FIX 4.4 session."""
    dictionary = data_dictionary_path()
    if not dictionary.is_file():
        raise BridgeConfigError(f"the FIX 4.4 data dictionary is missing at {dictionary}")
    state = bridge_dir(settings)
    # The same daily session as the exchange's (00:00 UTC reset). Sequence numbers live in the
    # file store and survive restarts (no reset on logon, logout or disconnect): that is what
    # lets the exchange resend what the bridge missed while it was down, and the bridge resend
    # what the exchange missed.
    lines = [
        "[DEFAULT]",
        "ConnectionType=initiator",
        f"SocketConnectHost={settings.bridge_fix_host}",
        f"SocketConnectPort={settings.bridge_fix_port}",
        "SocketNodelay=Y",
        f"HeartBtInt={settings.bridge_heartbeat_s}",
        f"ReconnectInterval={settings.bridge_reconnect_interval_s}",
        "StartTime=00:00:00",
        "EndTime=00:00:00",
        f"FileStorePath={state / 'fix-store'}",
        f"FileLogPath={state / 'fix-log'}",
        "UseDataDictionary=Y",
        f"DataDictionary={dictionary}",
        "ValidateUserDefinedFields=N",
        "AllowUnknownMsgFields=Y",
        "ResetOnLogon=N",
        "ResetOnLogout=N",
        "ResetOnDisconnect=N",
        "PersistMessages=Y",
        "TimestampPrecision=6",
        "",
        "[SESSION]",
        f"BeginString={BEGIN_STRING}",
        f"SenderCompID={settings.bridge_sender_comp_id}",
        f"TargetCompID={settings.bridge_target_comp_id}",
        "",
    ]
    return "\n".join(lines)

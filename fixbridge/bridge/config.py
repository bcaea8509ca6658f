"""What the bridge derives from ``Settings``: its state folder and the QuickFIX initiator config."""

from __future__ import annotations

from pathlib import Path

from core.settings import Settings
from fixbridge.bridge.exceptions import BridgeConfigError
from fixbridge.session_config import BEGIN_STRING, data_dictionary_path, session_ini

__all__ = ["BEGIN_STRING", "bridge_dir", "initiator_config"]


def bridge_dir(settings: Settings) -> Path:
    """The bridge's state: the FIX store (sequence numbers, sent messages) and log.

    Every bridge process on the machine shares it; only the lease holder opens it (``lease``).
    """
    return settings.state_dir / "bridge"


def initiator_config(settings: Settings) -> str:
    """The QuickFIX initiator settings (INI text) of the bridge's one FIX 4.4 session."""
    dictionary = data_dictionary_path()
    if not dictionary.is_file():
        raise BridgeConfigError(f"the FIX 4.4 data dictionary is missing at {dictionary}")
    connection = [
        "ConnectionType=initiator",
        f"SocketConnectHost={settings.bridge_fix_host}",
        f"SocketConnectPort={settings.bridge_fix_port}",
        f"HeartBtInt={settings.bridge_heartbeat_s}",
        f"ReconnectInterval={settings.bridge_reconnect_interval_s}",
    ]
    return session_ini(
        connection,
        bridge_dir(settings),
        settings.bridge_sender_comp_id,
        settings.bridge_target_comp_id,
    )

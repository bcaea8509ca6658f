"""The QuickFIX session settings both ends of our FIX 4.4 wire share (bridge and simulator)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import quickfix as fix

BEGIN_STRING = "FIX.4.4"


def data_dictionary_path() -> Path:
    """The FIX 4.4 data dictionary shipped with quickfix-ssl in this environment."""
    return Path(sys.prefix) / "share" / "quickfix" / "FIX44.xml"


def session_ini(
    connection: list[str], state: Path, sender_comp_id: str, target_comp_id: str
) -> str:
    """INI text of one FIX 4.4 session: ``connection`` lines first, then the shared settings.

    A daily session (00:00 UTC; QuickFIX 1.15 has no NonStopSession) whose sequence numbers live
    in the file store and survive restarts (no reset on logon, logout or disconnect): that is
    what lets each side resend what the other missed while it was down.
    """
    dictionary = data_dictionary_path()
    lines = [
        "[DEFAULT]",
        *connection,
        "SocketNodelay=Y",
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
        f"SenderCompID={sender_comp_id}",
        f"TargetCompID={target_comp_id}",
        "",
    ]
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class SessionFiles:
    """QuickFIX's settings, file store and file log factories for one end's state folder."""

    settings: fix.SessionSettings
    store: fix.FileStoreFactory
    logs: fix.FileLogFactory


def session_files(state: Path, config_name: str, config_text: str) -> SessionFiles:
    """Write the INI text under ``state`` and open QuickFIX's settings, store and log on it."""
    state.mkdir(parents=True, exist_ok=True)
    config_path = state / config_name
    # QuickFIX reads its settings from a file; the text is generated from Settings each start.
    config_path.write_text(config_text, encoding="utf-8")
    session_settings = fix.SessionSettings(str(config_path))
    return SessionFiles(
        session_settings,
        fix.FileStoreFactory(session_settings),
        fix.FileLogFactory(session_settings),
    )

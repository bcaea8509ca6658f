"""What the simulator derives from ``Settings``: folders, QuickFIX acceptor config, injection."""

from __future__ import annotations

import sys
from pathlib import Path

from core.settings import Settings
from fixbridge.exceptions import SimulatorConfigError
from fixbridge.simulator.trade_report import Injection

BEGIN_STRING = "FIX.4.4"


def data_dictionary_path() -> Path:
    """The FIX 4.4 data dictionary shipped with quickfix-ssl in this environment."""
    return Path(sys.prefix) / "share" / "quickfix" / "FIX44.xml"


def simulator_dir(settings: Settings) -> Path:
    """The simulator's own state: FIX store and log, fill journal."""
    return settings.state_dir / "simulator"


def trade_report_dir(settings: Settings) -> Path:
    """The landing folder of the end-of-day trade reports."""
    if settings.sim_trade_report_dir is not None:
        return settings.sim_trade_report_dir
    return settings.state_dir / "landing" / "trade_reports"


def injection(settings: Settings) -> Injection:
    """The discrepancies to inject into each trade report."""
    return Injection(
        drop_fills=settings.sim_inject_drop_fills,
        change_qty=settings.sim_inject_change_qty,
        extra_trades=settings.sim_inject_extra_trades,
    )


def acceptor_config(settings: Settings) -> str:
    """The QuickFIX acceptor settings (INI text) of the simulator's one FIX 4.4 session."""
    dictionary = data_dictionary_path()
    if not dictionary.is_file():
        raise SimulatorConfigError(f"the FIX 4.4 data dictionary is missing at {dictionary}")
    state = simulator_dir(settings)
    # A daily session like a real exchange's: sequence numbers survive restarts and reset at
    # 00:00 UTC (05:30 in Kolkata, before the open); QuickFIX 1.15 has no NonStopSession.
    # QuickFIX 1.15 binds the acceptor port on every interface (no accept-address setting), so
    # firewall the port outside development.
    lines = [
        "[DEFAULT]",
        "ConnectionType=acceptor",
        f"SocketAcceptPort={settings.sim_fix_port}",
        "SocketReuseAddress=Y",
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
        f"SenderCompID={settings.sim_sender_comp_id}",
        f"TargetCompID={settings.sim_target_comp_id}",
        "",
    ]
    return "\n".join(lines)

"""What the simulator derives from ``Settings``: folders, QuickFIX acceptor config, injection."""

from __future__ import annotations

from pathlib import Path

from core.settings import Settings
from fixbridge.exceptions import SimulatorConfigError
from fixbridge.session_config import BEGIN_STRING, data_dictionary_path, session_ini
from fixbridge.simulator.trade_report import Injection

__all__ = [
    "BEGIN_STRING",
    "acceptor_config",
    "data_dictionary_path",
    "injection",
    "simulator_dir",
    "trade_report_dir",
]


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


def acceptor_config(settings: Settings, port: int) -> str:
    """The QuickFIX acceptor settings (INI text) of the simulator's one FIX 4.4 session.

    The acceptor listens on ``port``, behind the logon front (``logon_front``) that owns the
    public ``sim_fix_port``.
    """
    dictionary = data_dictionary_path()
    if not dictionary.is_file():
        raise SimulatorConfigError(f"the FIX 4.4 data dictionary is missing at {dictionary}")
    # QuickFIX 1.15 binds the acceptor port on every interface (no accept-address setting), so
    # firewall the ports outside development.
    connection = [
        "ConnectionType=acceptor",
        f"SocketAcceptPort={port}",
        "SocketReuseAddress=Y",
    ]
    return session_ini(
        connection,
        simulator_dir(settings),
        settings.sim_sender_comp_id,
        settings.sim_target_comp_id,
    )

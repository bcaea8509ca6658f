"""The public front: Debian's HAProxy, TLS 1.3 only, balancing the API processes.

It also balances Dagster's UIs and code servers on their loopback ports (internal, plain).

It terminates TLS (TLS 1.2 and older are refused), adds HSTS, redirects plain HTTP, checks
every API process on ``/readyz`` and takes a failing one out of rotation within the bound
``core.settings`` gives beside ``front_check_fast_interval_ms``. A request whose connection to a
dead process fails is sent to another one (``retry-on conn-failure``: nothing reached the dead
one, so even a POST is safe to resend). Streams pass through unbuffered: HAProxy forwards each
chunk as it comes, and the stream routes get the long idle timeout.
"""

from __future__ import annotations

import csv
import shutil
import socket
from pathlib import Path

from core.settings import Settings

HAPROXY = "haproxy"
# Request headers must arrive within this; it bounds slow-header (slowloris) clients.
HTTP_REQUEST_TIMEOUT_S = 10
CONNECT_TIMEOUT_S = 2
# A normal request's idle bound on either side (the price stream sends a heartbeat well within).
IDLE_TIMEOUT_S = 60
# The code location's gRPC channels stay open between calls.
CODE_SERVER_IDLE_TIMEOUT_S = 3_600
# Routes whose responses are streams (SSE and WebSocket).
STREAM_PATH_PREFIX = "/v1/stream/"


def home(settings: Settings) -> Path:
    """The front's folder: its configuration and admin socket."""
    return settings.state_dir / "front"


def config_file(settings: Settings) -> Path:
    """The rendered haproxy.cfg."""
    return home(settings) / "haproxy.cfg"


def admin_socket(settings: Settings) -> Path:
    """HAProxy's runtime API socket (``show servers state``, ``show stat``)."""
    return home(settings) / "admin.sock"


def api_ports(settings: Settings) -> list[int]:
    """The ports of the API processes the run command starts on api_host."""
    return [settings.api_port + i for i in range(settings.api_processes)]


def dagster_webserver_ports(settings: Settings) -> list[int]:
    """The ports of the Dagster UI processes the run command starts on dagster_host."""
    return [settings.dagster_port + i for i in range(1, settings.dagster_webserver_processes + 1)]


def dagster_code_ports(settings: Settings) -> list[int]:
    """The ports of the code servers the run command starts on dagster_code_host."""
    return [settings.dagster_code_port + i for i in range(1, settings.dagster_code_processes + 1)]


def _dagster(settings: Settings, check: str) -> str:
    uis = settings.dagster_webserver_backends or [
        f"{settings.dagster_host}:{port}" for port in dagster_webserver_ports(settings)
    ]
    codes = settings.dagster_code_backends or [
        f"{settings.dagster_code_host}:{port}" for port in dagster_code_ports(settings)
    ]
    ui = "\n".join(
        f"  server ui{i} {address} check {check}" for i, address in enumerate(uis, start=1)
    )
    code = "\n".join(
        f"  server code{i} {address} check {check}" for i, address in enumerate(codes, start=1)
    )
    return f"""
listen dagster_ui
  bind {settings.dagster_host}:{settings.dagster_port}
  balance roundrobin
  option httpchk GET /server_info
  http-check expect status 200
{ui}

# Every client of the code location (the UIs, the daemon) is sent to one code server, and
# stays there after the dead one is back: the one-row table sticks on the listener's own
# address. A new server would give the location a new server id, which makes Dagster reload it.
listen dagster_code
  mode tcp
  bind {settings.dagster_code_host}:{settings.dagster_code_port}
  timeout client {CODE_SERVER_IDLE_TIMEOUT_S}s
  timeout server {CODE_SERVER_IDLE_TIMEOUT_S}s
  stick-table type ip size 1 nopurge
  stick on dst
{code}
"""


def backends(settings: Settings) -> list[str]:
    """Every API process behind the front, as host:port."""
    if settings.api_backends:
        return list(settings.api_backends)
    return [f"{settings.api_host}:{port}" for port in api_ports(settings)]


def render(settings: Settings) -> str:
    """haproxy.cfg for these settings."""
    check = (
        f"inter {settings.front_check_interval_ms}ms"
        f" fastinter {settings.front_check_fast_interval_ms}ms fall {settings.front_check_fall}"
        f" rise {settings.front_check_rise}"
    )
    addresses = backends(settings)
    servers = "\n".join(
        f"  server api{i + 1} {address} check {check}" for i, address in enumerate(addresses)
    )
    # Used only when every process fails its checks (say, all slowed by load): trying them
    # beats a certain 503, and a refused connection is still sent on to another.
    backups = "\n".join(
        f"  server api{i + 1}-last {address} backup" for i, address in enumerate(addresses)
    )
    # The stream routes follow the same checks instead of checking every process twice.
    tracked = "\n".join(
        f"  server api{i + 1} {address} track api/api{i + 1}" for i, address in enumerate(addresses)
    )
    stream_idle_s = settings.front_stream_idle_timeout_s
    https = settings.front_url
    return f"""\
# Rendered by infra/front.py from the BROKER_* settings; edits here are overwritten.
global
  log stdout format raw daemon notice
  maxconn {settings.front_connections_max}
  stats socket {admin_socket(settings)} mode 600 level admin
  ssl-default-bind-options ssl-min-ver TLSv1.3 no-tls-tickets

defaults
  mode http
  log global
  option dontlognull
  timeout connect {CONNECT_TIMEOUT_S}s
  timeout check {settings.front_check_timeout_ms}ms
  timeout http-request {HTTP_REQUEST_TIMEOUT_S}s
  timeout client {IDLE_TIMEOUT_S}s
  timeout server {IDLE_TIMEOUT_S}s
  timeout tunnel {stream_idle_s}s
  timeout client-fin 5s
  retries 3
  retry-on conn-failure
  option redispatch 1

frontend plain_http
  bind {settings.front_host}:{settings.front_http_port}
  http-request redirect location {https}%[capture.req.uri] code 301

frontend public
  bind {settings.front_host}:{settings.front_https_port} ssl crt {settings.front_cert_path} \
alpn http/1.1
  option forwardfor
  http-request set-header X-Forwarded-Proto https
  http-response set-header Strict-Transport-Security "max-age={settings.front_hsts_max_age_s}"
  use_backend api_streams if {{ path_beg {STREAM_PATH_PREFIX} }}
  default_backend api

backend api
  balance roundrobin
  option allbackups
  option httpchk GET /readyz
  http-check expect status 200
{servers}
{backups}

backend api_streams
  balance leastconn
  option allbackups
  timeout server {stream_idle_s}s
{tracked}
{backups}
{_dagster(settings, check)}"""


def prepare(settings: Settings) -> Path:
    """Write haproxy.cfg and return its path."""
    home(settings).mkdir(parents=True, exist_ok=True)
    path = config_file(settings)
    path.write_text(render(settings))
    return path


def foreground_argv(settings: Settings) -> list[str]:
    """HAProxy in the foreground on the rendered configuration (for the supervisor)."""
    binary = shutil.which(HAPROXY) or f"/usr/sbin/{HAPROXY}"
    return [binary, "-db", "-f", str(config_file(settings))]


def server_states(settings: Settings) -> dict[str, str]:
    """Each API process's state in the front's rotation (``UP``, ``DOWN``, ...), by server name."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(CONNECT_TIMEOUT_S)
        sock.connect(str(admin_socket(settings)))
        sock.sendall(b"show stat\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    text = b"".join(chunks).decode().lstrip("# ")
    return {
        row["svname"]: row["status"]
        for row in csv.DictReader(text.splitlines())
        if row.get("pxname") == "api" and row["svname"] not in ("FRONTEND", "BACKEND")
    }

"""A single-node Apache Kafka (KRaft) from Maven Central jars, run with the machine's Java."""

from __future__ import annotations

import base64
import logging
import shutil
import subprocess
import uuid
from pathlib import Path

from core.settings import PROJECT_ROOT, Settings
from infra import procs

log = logging.getLogger(__name__)

POM = PROJECT_ROOT / "infra" / "pom.xml"
LOG4J_CONFIG = PROJECT_ROOT / "infra" / "kafka" / "log4j2.properties"
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"


def libs_dir(settings: Settings) -> Path:
    """Where the broker jars live; shared by every stack of this checkout."""
    return PROJECT_ROOT / ".local" / "kafka-libs" / settings.kafka_version


def home(settings: Settings) -> Path:
    """This stack's Kafka folder: config, data, log and pid file."""
    return settings.state_dir / "kafka"


def _marker(settings: Settings) -> str:
    # The config path tells this stack's broker from any other java process.
    return str(home(settings) / "server.properties")


def pid_file(settings: Settings) -> Path:
    """The broker's pid file."""
    return home(settings) / "kafka.pid"


def log_file(settings: Settings) -> Path:
    """The broker's console log."""
    return home(settings) / "kafka.log"


def fetch(settings: Settings) -> Path:
    """Fetch the broker jars with Maven unless this version is already in place."""
    libs = libs_dir(settings)
    marker = libs / ".complete"
    if marker.exists():
        return libs
    if shutil.which("mvn") is None:
        raise procs.InfraError("mvn is not on PATH; install Maven to fetch the Kafka jars")
    log.info("fetching Kafka %s jars from Maven Central into %s", settings.kafka_version, libs)
    libs.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-Dstyle.color=never",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-Dkafka.version={settings.kafka_version}",
            f"-Dkafka.libs.dir={libs}",
        ],
        check=True,
    )
    marker.touch()
    return libs


def server_properties(settings: Settings) -> str:
    """The broker configuration: one combined broker+controller node on loopback."""
    host = settings.kafka_host
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{host}:{settings.kafka_controller_port}",
            f"listeners=PLAINTEXT://{host}:{settings.kafka_port},"
            f"CONTROLLER://{host}:{settings.kafka_controller_port}",
            f"advertised.listeners=PLAINTEXT://{host}:{settings.kafka_port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={home(settings) / 'data'}",
            "num.partitions=1",
            # Topics are created by infra/topics.py with explicit partition counts.
            "auto.create.topics.enable=false",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=10",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "log.segment.bytes=268435456",
            "",
        ]
    )


def _java_argv(settings: Settings, main: str, *args: str) -> list[str]:
    java = shutil.which("java")
    if java is None:
        raise procs.InfraError("java is not on PATH; Kafka needs Java 17")
    heap = f"{settings.kafka_heap_mb}m"
    return [
        java,
        f"-Xms{heap}",
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        f"-Dkafka.logs.dir={home(settings) / 'logs'}",
        "-cp",
        f"{libs_dir(settings)}/*",
        main,
        *args,
    ]


def _format_storage(settings: Settings, config: Path) -> None:
    if (home(settings) / "data" / "meta.properties").exists():
        return
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    log.info("formatting Kafka storage (cluster id %s)", cluster_id)
    # "=" keeps an id that starts with "-" from being read as an option.
    argv = ["format", f"--cluster-id={cluster_id}", f"--config={config}"]
    result = subprocess.run(
        _java_argv(settings, STORAGE_TOOL, *argv), check=False, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise procs.InfraError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")


def ready(settings: Settings) -> bool:
    """True when the broker answers a metadata request."""
    if not procs.port_open(settings.kafka_host, settings.kafka_port):
        return False
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    try:
        metadata = admin.list_topics(timeout=2)
    except Exception:  # noqa: BLE001 - any failure here only means "not ready yet"
        return False
    return bool(metadata.brokers)


def start(settings: Settings) -> int:
    """Start the broker unless it already runs; return its pid once it answers."""
    pid = procs.live_pid(pid_file(settings), _marker(settings))
    if pid is not None:
        procs.wait_until(lambda: ready(settings), settings.startup_timeout_s, "Kafka")
        return pid
    if procs.port_open(settings.kafka_host, settings.kafka_port):
        raise procs.InfraError(
            f"port {settings.kafka_port} is taken by a process this stack did not start"
        )
    fetch(settings)
    home(settings).mkdir(parents=True, exist_ok=True)
    config = home(settings) / "server.properties"
    config.write_text(server_properties(settings))
    _format_storage(settings, config)
    return procs.spawn_daemon(
        "Kafka",
        _java_argv(settings, MAIN_CLASS, str(config)),
        pid_file(settings),
        log_file(settings),
        lambda: ready(settings),
        settings.startup_timeout_s,
    )


def stop(settings: Settings) -> bool:
    """Stop the broker if it runs; True when there was one to stop."""
    return procs.stop_daemon(pid_file(settings), _marker(settings), settings.shutdown_timeout_s)


def status(settings: Settings) -> str:
    """One line saying whether the broker runs and where it listens."""
    pid = procs.live_pid(pid_file(settings), _marker(settings))
    if pid is None:
        return "kafka: stopped"
    state = "ready" if ready(settings) else "starting"
    return f"kafka: {state}, pid {pid}, bootstrap {settings.kafka_bootstrap}"

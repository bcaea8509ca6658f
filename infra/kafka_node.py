"""Apache Kafka (KRaft) from Maven Central jars, run with the machine's Java: one node or several.

Every node is both broker and controller. Several nodes share one cluster id and one quorum; the
topics then keep three copies with two in sync, so a node can die without losing an acknowledged
write or refusing a new one.
"""

from __future__ import annotations

import base64
import logging
import shutil
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient

from core.settings import PROJECT_ROOT, Settings
from infra import procs

log = logging.getLogger(__name__)

POM = PROJECT_ROOT / "infra" / "pom.xml"
LOG4J_CONFIG = PROJECT_ROOT / "infra" / "kafka" / "log4j2.properties"
MAIN_CLASS = "kafka.Kafka"
# A readiness probe answers fast or counts as "not yet"; status and the chaos suite may wait
# longer for a whole cluster's metadata.
PROBE_TIMEOUT_S = 2
METADATA_TIMEOUT_S = 10
STORAGE_TOOL = "kafka.tools.StorageTool"


def libs_dir(settings: Settings) -> Path:
    """Where the broker jars live; shared by every stack of this checkout."""
    return PROJECT_ROOT / ".local" / "kafka-libs" / settings.kafka_version


def home(settings: Settings, index: int = 0) -> Path:
    """Node ``index``'s Kafka folder (config, data, log, pid file); the first is plain ``kafka``."""
    return settings.state_dir / ("kafka" if index == 0 else f"kafka-{index + 1}")


def _marker(settings: Settings, index: int) -> str:
    # The config path tells this node from any other java process.
    return str(home(settings, index) / "server.properties")


def pid_file(settings: Settings, index: int = 0) -> Path:
    """Node ``index``'s pid file."""
    return home(settings, index) / "kafka.pid"


def log_file(settings: Settings, index: int = 0) -> Path:
    """Node ``index``'s console log."""
    return home(settings, index) / "kafka.log"


def node_pid(settings: Settings, index: int) -> int | None:
    """The pid of node ``index`` when it runs."""
    return procs.live_pid(pid_file(settings, index), _marker(settings, index))


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


def server_properties(settings: Settings, index: int = 0) -> str:
    """Node ``index``'s configuration: a combined broker and controller on loopback."""
    host = settings.kafka_host
    port = settings.kafka_node_port(index)
    controller_port = settings.kafka_node_controller_port(index)
    voters = ",".join(
        f"{i + 1}@{host}:{settings.kafka_node_controller_port(i)}"
        for i in range(settings.kafka_nodes)
    )
    replicas = settings.kafka_replication_factor
    in_sync = settings.kafka_min_insync_replicas
    return "\n".join(
        [
            "process.roles=broker,controller",
            f"node.id={index + 1}",
            f"controller.quorum.voters={voters}",
            f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
            f"advertised.listeners=PLAINTEXT://{host}:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={home(settings, index) / 'data'}",
            "num.partitions=1",
            # Topics are created by infra/topics.py with explicit partition counts.
            "auto.create.topics.enable=false",
            f"default.replication.factor={replicas}",
            f"min.insync.replicas={in_sync}",
            # A replica that lost data must not become leader: acknowledged writes stay.
            "unclean.leader.election.enable=false",
            f"offsets.topic.replication.factor={replicas}",
            "offsets.topic.num.partitions=10",
            f"transaction.state.log.replication.factor={replicas}",
            f"transaction.state.log.min.isr={in_sync}",
            f"share.coordinator.state.topic.replication.factor={replicas}",
            f"share.coordinator.state.topic.min.isr={in_sync}",
            f"broker.heartbeat.interval.ms={settings.kafka_heartbeat_ms}",
            f"broker.session.timeout.ms={settings.kafka_session_timeout_ms}",
            "group.initial.rebalance.delay.ms=0",
            "log.segment.bytes=268435456",
            "",
        ]
    )


def _java_argv(settings: Settings, index: int, main: str, *args: str) -> list[str]:
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
        f"-Dkafka.logs.dir={home(settings, index) / 'logs'}",
        "-cp",
        f"{libs_dir(settings)}/*",
        main,
        *args,
    ]


def _cluster_id(settings: Settings) -> str:
    """The id every node of this stack is formatted with (made once, kept with the first node)."""
    path = home(settings) / "cluster.id"
    if path.exists():
        return path.read_text().strip()
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    path.write_text(cluster_id + "\n")
    return cluster_id


def _check_node_count(settings: Settings) -> None:
    """Refuse to start a stack whose data was made for another number of nodes."""
    path = home(settings) / "nodes"
    if not path.exists():
        path.write_text(f"{settings.kafka_nodes}\n")
        return
    made_for = int(path.read_text().strip())
    if made_for != settings.kafka_nodes:
        raise procs.InfraError(
            f"Kafka's data in {settings.state_dir} was made for {made_for} node(s), not "
            f"{settings.kafka_nodes}: set BROKER_KAFKA_NODES={made_for}, or stop the stack and "
            "remove its kafka* folders to start afresh"
        )


def _format_storage(settings: Settings, index: int, config: Path) -> None:
    if (home(settings, index) / "data" / "meta.properties").exists():
        return
    cluster_id = _cluster_id(settings)
    log.info("formatting Kafka node %d storage (cluster id %s)", index + 1, cluster_id)
    # "=" keeps an id that starts with "-" from being read as an option.
    argv = ["format", f"--cluster-id={cluster_id}", f"--config={config}"]
    result = subprocess.run(
        _java_argv(settings, index, STORAGE_TOOL, *argv),
        check=False,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise procs.InfraError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def node_ready(settings: Settings, index: int) -> bool:
    """True when node ``index`` answers a metadata request."""
    host, port = settings.kafka_host, settings.kafka_node_port(index)
    if not procs.port_open(host, port):
        return False
    try:
        metadata = _admin(f"{host}:{port}").list_topics(timeout=PROBE_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - any failure here only means "not ready yet"
        return False
    return bool(metadata.brokers)


def ready(settings: Settings) -> bool:
    """True when every node answers, the metadata lists every broker and each copy is in sync.

    A node that comes back is ready once it has caught up: until then one more death would
    leave a partition with fewer copies than acks=all writes need.
    """
    if not all(node_ready(settings, i) for i in range(settings.kafka_nodes)):
        return False
    try:
        metadata = _admin(settings.kafka_bootstrap).list_topics(timeout=PROBE_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - any failure here only means "not ready yet"
        return False
    in_sync = all(
        len(partition.isrs) == len(partition.replicas)
        for topic in metadata.topics.values()
        for partition in topic.partitions.values()
    )
    return len(metadata.brokers) == settings.kafka_nodes and in_sync


def _spawn(settings: Settings, index: int) -> None:
    port = settings.kafka_node_port(index)
    if procs.port_open(settings.kafka_host, port):
        raise procs.InfraError(f"port {port} is taken by a process this stack did not start")
    home(settings, index).mkdir(parents=True, exist_ok=True)
    config = home(settings, index) / "server.properties"
    config.write_text(server_properties(settings, index))
    _format_storage(settings, index, config)
    # No wait here: a node of several is ready only once a quorum of them runs.
    procs.spawn_daemon(
        f"Kafka node {index + 1}",
        _java_argv(settings, index, MAIN_CLASS, str(config)),
        pid_file(settings, index),
        log_file(settings, index),
        lambda: True,
        settings.startup_timeout_s,
    )


def start(settings: Settings) -> list[int]:
    """Start every node that does not run (a second call is harmless); their pids once ready."""
    home(settings).mkdir(parents=True, exist_ok=True)
    _check_node_count(settings)
    missing = [i for i in range(settings.kafka_nodes) if node_pid(settings, i) is None]
    if missing:
        fetch(settings)
    for index in missing:
        _spawn(settings, index)
    try:
        procs.wait_until(lambda: ready(settings), settings.startup_timeout_s, "Kafka")
    except procs.InfraError as exc:
        tails = "\n".join(
            f"{log_file(settings, i)}:\n{procs.tail(log_file(settings, i))}" for i in missing
        )
        raise procs.InfraError(f"{exc}; last lines of the started nodes' logs:\n{tails}") from exc
    return [node_pid(settings, i) or 0 for i in range(settings.kafka_nodes)]


def stop(settings: Settings) -> bool:
    """Stop every node (together: one alone would wait for a quorum); True when one ran."""
    running = [
        (pid, _marker(settings, i))
        for i in range(settings.kafka_nodes)
        if (pid := node_pid(settings, i)) is not None
    ]
    with ThreadPoolExecutor(max_workers=max(1, len(running))) as pool:
        list(
            pool.map(
                lambda job: procs.terminate(job[0], job[1], settings.shutdown_timeout_s), running
            )
        )
    for index in range(settings.kafka_nodes):
        pid_file(settings, index).unlink(missing_ok=True)
    return bool(running)


@dataclass(frozen=True, slots=True)
class NodeRoles:
    """What each node does in the cluster right now, from its metadata."""

    controller: int | None
    leaders: dict[int, int]
    under_replicated: int


def roles(settings: Settings) -> NodeRoles | None:
    """The active controller, partitions led per node id and under-replicated partitions."""
    admin = _admin(settings.kafka_bootstrap)
    try:
        metadata = admin.list_topics(timeout=METADATA_TIMEOUT_S)
        controller = admin.describe_cluster(request_timeout=METADATA_TIMEOUT_S).result().controller
    except Exception:  # noqa: BLE001 - a cluster that cannot answer has no roles to show
        return None
    leaders: dict[int, int] = {}
    under = 0
    for topic in metadata.topics.values():
        for partition in topic.partitions.values():
            leaders[partition.leader] = leaders.get(partition.leader, 0) + 1
            under += len(partition.isrs) < len(partition.replicas)
    return NodeRoles(controller.id if controller else None, leaders, under)


def busiest_leader(settings: Settings, topic_names: list[str]) -> int:
    """The index of the node leading most partitions of these topics (the one to kill)."""
    metadata = _admin(settings.kafka_bootstrap).list_topics(timeout=METADATA_TIMEOUT_S)
    counts: dict[int, int] = {}
    for name in topic_names:
        for partition in metadata.topics[name].partitions.values():
            counts[partition.leader] = counts.get(partition.leader, 0) + 1
    node_id = max(counts, key=lambda k: counts[k])
    return node_id - 1


def status(settings: Settings) -> list[str]:
    """A line per node (running or not, its port, its part in the cluster), then the cluster's."""
    pids = [node_pid(settings, i) for i in range(settings.kafka_nodes)]
    found = roles(settings) if any(pids) else None
    lines = []
    for index, pid in enumerate(pids):
        name = "kafka" if settings.kafka_nodes == 1 else f"kafka-{index + 1}"
        if pid is None:
            lines.append(f"{name}: stopped")
            continue
        state = "ready" if node_ready(settings, index) else "starting"
        line = (
            f"{name}: {state}, pid {pid}, {settings.kafka_host}:{settings.kafka_node_port(index)}"
        )
        if found is not None:
            line += f", leads {found.leaders.get(index + 1, 0)} partitions"
            if found.controller == index + 1:
                line += ", active controller"
        lines.append(line)
    if settings.kafka_nodes > 1 and found is not None:
        whole = all(pids) and found.under_replicated == 0
        lines.append(
            f"kafka cluster: {'ready' if whole else 'degraded'}, {settings.kafka_nodes} nodes,"
            f" replication {settings.kafka_replication_factor}, min in sync"
            f" {settings.kafka_min_insync_replicas}, {found.under_replicated} under-replicated"
            " partitions"
        )
    return lines

"""Redis: memory-only, as a cache; TLS with the local cloud's CA, as ElastiCache requires."""

from __future__ import annotations

import socket
from collections.abc import Callable

from ..certificates import ca_bundle, server_certificate
from ..config import HOST
from .common import EngineInstance
from .processes import command_line

SLOTS = 16384


def init(inst: EngineInstance) -> None:
    inst.data_dir.mkdir(mode=0o700, exist_ok=True)


def command(inst: EngineInstance) -> tuple[list[str], Callable[[], None]]:
    import redis  # the client library (absolute import), not this module

    host = inst.host or HOST
    # --set-proc-title no keeps argv (and so --dir) in /proc/<pid>/cmdline for kill_leftovers.
    template = "--bind {host} --save {empty} --appendonly no --dir {data} --daemonize no"
    template += " --set-proc-title no"
    extra: dict[str, object] = {"empty": "", "host": host}
    ca = None
    if inst.tls:
        state = inst.dir.parent.parent  # <state>/engines/<instance>: the CA is the state's
        ca = ca_bundle(state)
        names = [*inst.hostnames, "localhost"]
        cert, key = server_certificate(state, f"redis-{inst.dir.name}", names, [host])
        template += " --port 0 --tls-port {port} --tls-auth-clients no"
        template += " --tls-ca-cert-file {ca} --tls-cert-file {cert} --tls-key-file {keyfile}"
        extra |= {"ca": ca, "cert": cert, "keyfile": key}
    else:
        template += " --port {port}"
    if inst.cluster:
        # The bus port is any free one: port + 10000 may be taken or beyond 65535.
        template += " --cluster-enabled yes --cluster-config-file {data}/nodes.conf"
        template += " --cluster-port {bus} --cluster-announce-ip {host}"
        template += " --cluster-require-full-coverage no"
        template += " --tls-cluster yes" if inst.tls else ""
        extra["bus"] = _free_port(host)
    cmd = command_line(inst, "redis", template, **extra)

    def probe() -> None:
        tls = {"ssl": True, "ssl_ca_certs": str(ca)} if ca else {}
        with redis.Redis(host=host, port=inst.port, socket_timeout=2, **tls) as client:
            client.ping()
            if inst.cluster:
                _own_every_slot(client)

    return cmd, probe


def _own_every_slot(client: object) -> None:
    """One node serves all 16384 slots, as a serverless cache's single endpoint does."""
    info = client.cluster("INFO")  # type: ignore[attr-defined]
    if int(info.get("cluster_slots_assigned", 0)) < SLOTS:
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, SLOTS - 1)  # type: ignore[attr-defined]
        info = client.cluster("INFO")  # type: ignore[attr-defined]
    if info.get("cluster_state") != "ok":
        raise RuntimeError("cluster state is not ok yet")


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]

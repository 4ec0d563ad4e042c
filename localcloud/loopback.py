"""Loopback addresses of their own for servers that listen on AWS's default ports.

Code written for AWS connects to a database on 3306 or 5432 and to Redis on 6379, whatever
the host. Each proxy, cache and database instance therefore gets an address of its own in
127.0.0.0/8 (Linux routes the whole block to loopback) where its ports are free, rather
than a free port on 127.0.0.1. Each kind draws from its own blocks of 127.0.<third>.0/24.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Iterable

log = logging.getLogger("localcloud.loopback")


def own_address(thirds: range, ports: Iterable[int], taken: set[str], kind: str) -> str | None:
    """The first 127.0.<third>.<n> where every port is free, or None (use 127.0.0.1).

    Addresses in `taken` and those another process listens on are skipped. None also when
    the machine refuses such addresses altogether: `kind` (e.g. "caches") then names who
    falls back to 127.0.0.1 with free ports, in the log.
    """
    ports = tuple(ports)
    for third in thirds:
        for fourth in range(1, 255):
            address = f"127.0.{third}.{fourth}"
            if address in taken:
                continue
            try:
                for port in ports:
                    with socket.socket() as probe:
                        # As the servers bind: a port in TIME_WAIT after a restart is free.
                        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                        probe.bind((address, port))
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    continue  # another local cloud on this machine uses it
                log.warning("cannot bind %s (%s); %s use 127.0.0.1 instead", address, error, kind)
                return None
            return address
    return None

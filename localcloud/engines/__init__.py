"""Private MariaDB, PostgreSQL and Redis servers that the local cloud's providers run on.

Process model: one instance per owner (e.g. an Aurora cluster) in `<root>/<slug>-<hash>/`
holding `data/`, `server.log`, `instance.json` (kind, owner, port, pid: no secrets, so any
process may read it) and `credentials.json` (mode 0600, for restarts). Servers start from the
machine's binaries in their own session (a terminal's Ctrl-C does not reach them), bind to
127.0.0.1 on a free port, and count as started once a real client gets an answer. They outlive
a crashed daemon; `kill_leftovers` lets another process end them (`up` and `down` do, through
`localcloud/orphans.py`, and delete the data no cluster owns any more).

The root catch: `initdb` and `postgres` refuse to run as root. As root, PostgreSQL runs as the
unprivileged `postgres` user (switched in the child before exec, so the recorded pid is the
postmaster itself) on a data directory owned by that user, and every directory above it must
be searchable by that user. Not root (a student's laptop): everything runs as the current user.
"""

from .common import PG_ADMIN, EngineEndpoint, EngineError
from .install import PACKAGES, binaries, install_missing, missing_packages
from .manager import EngineManager
from .processes import START_TIMEOUT, STOP_TIMEOUT, kill_leftovers

__all__ = [
    "PACKAGES",
    "PG_ADMIN",
    "START_TIMEOUT",
    "STOP_TIMEOUT",
    "EngineEndpoint",
    "EngineError",
    "EngineManager",
    "binaries",
    "install_missing",
    "kill_leftovers",
    "missing_packages",
]

"""Finding the engines' server binaries and installing the missing packages with apt-get."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .common import EngineError

PACKAGES = {"mysql": "mariadb-server", "postgres": "postgresql", "redis": "redis-server"}
# Not engines, but installed with them by `make setup`: the browser test's Chromium (driven
# by Playwright) and Graphviz's `dot`, which draws the architecture diagrams. Package -> binary.
TOOL_PACKAGES = {"chromium": "chromium", "graphviz": "dot"}


def binaries() -> dict[str, Path | None]:
    """Server binaries per kind, plus the initialisers `mysql_install` and `initdb`."""
    pg_dirs = [d for d in Path("/usr/lib/postgresql").glob("*/bin") if d.parent.name.isdigit()]
    pg_dirs.sort(key=lambda d: int(d.parent.name))  # the highest major wins
    pg_bin = next((d for d in reversed(pg_dirs) if (d / "initdb").exists()), None)
    return {
        "mysql": _which("mariadbd", "mysqld"),
        "mysql_install": _which("mariadb-install-db", "mysql_install_db"),
        "postgres": pg_bin / "postgres" if pg_bin else _which("postgres"),
        "initdb": pg_bin / "initdb" if pg_bin else _which("initdb"),
        "redis": _which("redis-server"),
    }


def _which(*names: str) -> Path | None:
    # /usr/sbin holds mariadbd but is not on a normal user's PATH on Debian.
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    for name in names:
        if found := shutil.which(name, path=path):
            return Path(found)
    return None


def missing_packages() -> list[str]:
    """The apt packages to install for the kinds whose binaries are missing."""
    found = binaries()
    need = {"mysql": ("mysql", "mysql_install"), "postgres": ("postgres", "initdb")}
    return [
        package
        for kind, package in PACKAGES.items()
        if any(found[key] is None for key in need.get(kind, (kind,)))
    ]


def missing_tool_packages() -> list[str]:
    """The apt packages of the course's tools (TOOL_PACKAGES) whose binaries are missing."""
    return [package for package, binary in TOOL_PACKAGES.items() if _which(binary) is None]


def install_missing(*, interactive: bool = False) -> None:
    """Install the missing engine (and tool) packages with apt-get, as root or through sudo."""
    packages = missing_packages() + missing_tool_packages()
    if not packages:
        return
    wanted = " ".join(packages)
    if shutil.which("apt-get") is None:
        raise EngineError(
            f"missing engine packages ({wanted}) and there is no apt-get: install MariaDB, "
            "PostgreSQL and Redis yourself (macOS: `brew install mariadb postgresql redis`)"
        )
    env = ["env", "DEBIAN_FRONTEND=noninteractive"]
    sudo = shutil.which("sudo")
    if os.geteuid() == 0:
        prefix = env
    elif sudo and interactive:
        prefix = ["sudo", *env]  # may ask for the user's password in the terminal
    elif sudo and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        prefix = ["sudo", "-n", *env]
    else:
        raise EngineError(
            f"missing engine packages: {wanted}. Install them once with: "
            f"sudo apt-get update && sudo apt-get install -y {wanted}"
        )
    print(f"installing with apt-get: {wanted} (about a minute)")
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", *packages]):
        run = subprocess.run([*prefix, *cmd], capture_output=not interactive, text=True)
        if run.returncode:
            tail = "\n".join(f"{run.stdout or ''}{run.stderr or ''}".splitlines()[-15:])
            raise EngineError(f"`{' '.join(cmd)}` failed (exit {run.returncode}):\n{tail}")
    if still := missing_packages() + missing_tool_packages():
        raise EngineError(f"installed {wanted}, yet binaries are still missing for: {still}")

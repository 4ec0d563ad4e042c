"""`python -m localcloud up|down|status|reset|env|logs|coverage|serve|install-engines`."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time

from . import daemon
from .config import DEFAULT_REGION, DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, state_dir
from .timing import PROFILES, timing_profile
from .trust import trust_environment


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m localcloud", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the daemon (detached) and wait until healthy")
    up.add_argument(
        "--timing",
        choices=PROFILES,
        help="'aws': apply AWS's propagation and latency rules, scaled (docs/coverage.md)",
    )
    up.add_argument("--timing-scale", type=float, help="AWS's delays times this (default 0.2)")
    commands.add_parser("down", help="stop the daemon and every engine it started")
    status = commands.add_parser("status", help="services, engines and course resources")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    commands.add_parser("reset", help="wipe all state: moto, providers, engine data")
    commands.add_parser(
        "env", help="print shell exports for AWS_ENDPOINT_URL, credentials and the CA bundle"
    )
    logs = commands.add_parser("logs", help="show the daemon's log")
    logs.add_argument("-n", type=int, default=50, help="number of lines (default 50)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    serve = commands.add_parser("serve", help="run the daemon in the foreground")
    serve.add_argument("--port", type=int, default=0)
    commands.add_parser("install-engines", help="apt-get install missing database servers")
    commands.add_parser("coverage", help="write docs/coverage.md from the providers")
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except daemon.DaemonError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _up(args: argparse.Namespace) -> int:
    if args.timing:
        os.environ["LOCALCLOUD_TIMING"] = args.timing
    if args.timing_scale is not None:
        os.environ["LOCALCLOUD_TIMING_SCALE"] = str(args.timing_scale)
    timing_profile()  # a bad scale is refused here, not in the daemon's log
    daemon.up()
    return 0


def _down(_: argparse.Namespace) -> int:
    stopped = daemon.down()
    print("stopped: " + ", ".join(stopped) if stopped else "local cloud was not running")
    return 0


def _status(args: argparse.Namespace) -> int:
    state = daemon.status()
    if args.json:
        print(json.dumps(state, indent=2, default=str))
    else:
        print(daemon.status_text(state))
    return 0 if state["running"] else 3


def _reset(_: argparse.Namespace) -> int:
    info = daemon.running()
    if info is None:
        print("local cloud: not running (nothing to reset)")
        return 0
    daemon.call(info, "reset", method="POST", timeout=120)
    print("local cloud: state wiped (moto, providers, engine data)")
    return 0


def _env(_: argparse.Namespace) -> int:
    info = daemon.running()
    if info is None:
        print(
            "# local cloud not running: start it with `python -m localcloud up`",
            file=sys.stderr,
        )
        return 3
    print(f"export AWS_ENDPOINT_URL={info.endpoint}")
    print(f"export AWS_ACCESS_KEY_ID={DUMMY_ACCESS_KEY_ID}")
    print(f"export AWS_SECRET_ACCESS_KEY={DUMMY_SECRET_ACCESS_KEY}")
    print(f"export AWS_DEFAULT_REGION={DEFAULT_REGION}")
    # The machine's CAs plus the local CA: clients verify the local TLS endpoints and AWS alike.
    for name, value in trust_environment(state_dir(), os.environ).items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def _logs(args: argparse.Namespace) -> int:
    path = daemon.log_path()
    print(daemon.tail(path, args.n))
    if args.follow:
        with path.open() as log:
            log.seek(0, 2)
            while True:
                line = log.readline()
                if line:
                    print(line, end="")
                else:
                    time.sleep(0.3)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .server import serve

    serve(args.port)
    return 0


def _install_engines(_: argparse.Namespace) -> int:
    from .engines import EngineError, install_missing

    try:
        install_missing()
    except EngineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _coverage(_: argparse.Namespace) -> int:
    from . import coverage
    from .services import all_services

    print(f"written {coverage.write(all_services())}")
    return 0


COMMANDS = {
    "up": _up,
    "down": _down,
    "status": _status,
    "reset": _reset,
    "env": _env,
    "logs": _logs,
    "serve": _serve,
    "install-engines": _install_engines,
    "coverage": _coverage,
}

if __name__ == "__main__":
    sys.exit(main())

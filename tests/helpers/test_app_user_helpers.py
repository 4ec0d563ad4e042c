"""Pattern 22's helpers without a cloud: the app user's grants, secret references, health check."""

from __future__ import annotations

import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import aurora, ecs


def test_grants_revoke_everything_then_grant_exactly_the_listed_privileges() -> None:
    statements = aurora.grant_statements(
        "inventory_app", "labdb", {"inventory": ["update", "SELECT", "INSERT"]}
    )
    assert statements == [
        "REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'inventory_app'@'%'",
        "GRANT INSERT, SELECT, UPDATE ON `labdb`.`inventory` TO 'inventory_app'@'%'",
    ]


@pytest.mark.parametrize(
    ("username", "privileges", "message"),
    [
        ("Admin'--", {"inventory": ["SELECT"]}, "username must be"),
        ("app", {"inventory; DROP TABLE x": ["SELECT"]}, "table name"),
        ("app", {"inventory": ["ALL PRIVILEGES"]}, "choose from"),
        ("app", {"inventory": []}, "choose from"),
    ],
)
def test_names_and_privileges_outside_the_allowed_sets_are_refused(
    username: str, privileges: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        aurora.grant_statements(username, "labdb", privileges)


def test_secret_references_name_one_json_key_of_the_current_version() -> None:
    user = aurora.AppUser(
        "inventory_app",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:scd-dev-22-db-user-AbCdEf",
        "scd-dev-22-db-user",
        "scd-dev-22-aurora",
        "labdb",
    )
    # ECS's format: <arn>:<json-key>:<version-stage>:<version-id>, empty fields kept.
    assert user.value_from("password").endswith(":secret:scd-dev-22-db-user-AbCdEf:password::")


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_the_container_health_check_passes_and_fails_like_the_endpoint() -> None:
    check = ecs.container_health_check("/health", 8080, interval_s=10, retries=3)
    assert check["command"][0] == "CMD-SHELL" and check["interval"] == 10
    shell = check["command"][1].replace("python -c", f"{sys.executable} -c")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = str(server.server_address[1])
        healthy = subprocess.run(["sh", "-c", shell], env={"PORT": port}, capture_output=True)
        missing = ecs.container_health_check("/missing")["command"][1]
        missing = missing.replace("python -c", f"{sys.executable} -c")
        failing = subprocess.run(["sh", "-c", missing], env={"PORT": port}, capture_output=True)
    finally:
        server.shutdown()
    assert healthy.returncode == 0 and failing.returncode == 1


@pytest.mark.parametrize(
    "arguments", [{"path": "health"}, {"interval_s": 1}, {"retries": 0}, {"start_period_s": 301}]
)
def test_health_check_settings_outside_ecs_ranges_are_refused(arguments: dict) -> None:
    with pytest.raises(ValueError):
        ecs.container_health_check(**arguments)

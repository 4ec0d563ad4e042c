"""RDS Proxy's pure logic: what SQL pins or is tracked, IAM token checks, packet framing."""

from __future__ import annotations

import datetime
import socket

import boto3
import pytest

from localcloud.config import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY
from localcloud.rds_proxy.iam_tokens import check_token
from localcloud.rds_proxy.responses import relay_query
from localcloud.rds_proxy.statements import apply_statements, classify
from localcloud.rds_proxy.wire import PacketStream, TooLarge, frame, ok_packet


@pytest.mark.parametrize(
    ("sql", "pins"),
    [
        ("SET @x = 1", True),
        ("SELECT @x := 1", True),
        ("SELECT COUNT(*) INTO @n FROM t", True),
        ("SET SESSION foreign_key_checks = 0", True),
        ("SET GLOBAL wait_timeout = 10", True),
        ("PREPARE s FROM 'SELECT 1'", True),
        ("CREATE TEMPORARY TABLE t (a INT)", True),
        ("LOCK TABLES t WRITE", True),
        ("FLUSH TABLES WITH READ LOCK", True),
        ("SELECT GET_LOCK('a', 1)", True),
        ("SELECT '" + "x" * 16400 + "'", True),
        ("SET @x = 1; SELECT @x", True),
        ("SELECT 1", False),
        ("SELECT 'a;b'; SELECT 2", False),
        ("CALL refresh_totals()", False),
        ("SELECT LAST_INSERT_ID()", False),
        ("/* SET @x = 1 */ SELECT 1", False),
    ],
)
def test_pinning_conditions(sql: str, pins: bool):
    assert bool(classify(sql.encode()).pin_reason) is pins


def test_tracked_variables_are_followed_not_pinned():
    meaning = classify(b"SET autocommit = 0, SESSION time_zone = '+00:00', @@sql_mode = 'ANSI'")
    assert meaning.pin_reason is None
    assert meaning.tracked == {"autocommit": "0", "time_zone": "'+00:00'", "sql_mode": "'ANSI'"}
    assert classify(b"SET NAMES utf8mb4 COLLATE utf8mb4_bin").tracked == {
        "names": "utf8mb4 collate utf8mb4_bin"
    }
    assert classify(b"SET tx_isolation = 'READ-COMMITTED'").tracked == {
        "transaction_isolation": "'READ-COMMITTED'"
    }
    assert classify(b"USE `shop`").schema == "shop"
    assert apply_statements({"schema": "shop", "autocommit": "0"}) == [
        "SET SESSION autocommit = 0",
        "USE `shop`",
    ]


def _token(user: str = "admin", host: str = "127.0.2.1") -> str:
    rds = boto3.client(
        "rds",
        region_name="us-east-1",
        aws_access_key_id=DUMMY_ACCESS_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
    )
    return rds.generate_db_auth_token(host, 3306, user)


def test_iam_token_checks():
    token = _token()
    assert check_token(token, "admin", "127.0.2.1", 3306, "us-east-1") is None
    assert "user" in check_token(token, "bob", "127.0.2.1", 3306, "us-east-1")
    assert "made for" in check_token(token, "admin", "127.0.2.2", 3306, "us-east-1")
    assert "scope" in check_token(token, "admin", "127.0.2.1", 3306, "eu-west-1")
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=901)
    assert "expired" in check_token(token, "admin", "127.0.2.1", 3306, "us-east-1", later)
    forged = token.replace("DBUser=admin", "DBUser=root")
    assert "signature" in check_token(forged, "root", "127.0.2.1", 3306, "us-east-1")


def test_packets_over_the_limit_are_refused_before_they_are_read():
    left, right = socket.socketpair()
    with left, right:
        left.sendall(frame(b"\x03" + b"x" * 100, 0))
        with pytest.raises(TooLarge):
            PacketStream(right, limit=50).read_payload()


def test_a_response_ends_at_the_last_result_and_keeps_its_status_flags():
    left, right = socket.socketpair()
    with left, right:
        more, in_transaction = 0x0008, 0x0001
        left.sendall(
            frame(ok_packet(more | in_transaction), 1) + frame(ok_packet(in_transaction), 2)
        )
        relayed: list[bytes] = []
        outcome = relay_query(PacketStream(right, 1 << 24), relayed.append)
        assert outcome.status == in_transaction and outcome.error is None
        assert len(b"".join(relayed)) == 2 * (4 + len(ok_packet(0)))

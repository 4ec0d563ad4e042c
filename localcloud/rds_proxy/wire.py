"""MySQL client/server protocol pieces the proxy needs: framed packets and a few packet kinds.

PyMySQL's constants (capability flags, commands, server status bits) and its password
scramble are used as they are; what is here is the server side PyMySQL does not have
(the greeting, OK and ERR packets a server sends) and a bounded packet reader.
Reference: https://dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html
"""

from __future__ import annotations

import socket
import struct

from pymysql.constants import CLIENT, SERVER_STATUS

MAX_PAYLOAD = 0xFFFFFF  # a packet of this length continues in the next one
HEADER = 4

# What the proxy offers clients. Nothing that changes a packet's layout beyond what every
# database connection speaks too (no DEPRECATE_EOF, SESSION_TRACK, COMPRESS or LOCAL_FILES),
# so responses pass through unchanged.
SERVER_CAPABILITIES = (
    CLIENT.LONG_PASSWORD
    | CLIENT.LONG_FLAG
    | CLIENT.CONNECT_WITH_DB
    | CLIENT.PROTOCOL_41
    | CLIENT.TRANSACTIONS
    | CLIENT.SECURE_CONNECTION
    | CLIENT.MULTI_STATEMENTS
    | CLIENT.MULTI_RESULTS
    | CLIENT.PS_MULTI_RESULTS
    | CLIENT.PLUGIN_AUTH
    | CLIENT.CONNECT_ATTRS
    | CLIENT.PLUGIN_AUTH_LENENC_CLIENT_DATA
)
SERVER_VERSION = b"8.0.32"  # what Aurora MySQL 3 reports; the engine behind is MariaDB
UTF8MB4_GENERAL_CI = 45


class ProtocolError(Exception):
    """The peer broke the protocol, closed the connection, or sent too much."""


class TooLarge(ProtocolError):
    """A packet over the stream's limit (max_allowed_packet for clients)."""


class PacketStream:
    """Reads and writes MySQL packets on a socket, never buffering more than `limit` bytes."""

    def __init__(self, sock: socket.socket, limit: int) -> None:
        self.sock = sock
        self.limit = limit
        self._buffer = bytearray()
        # Before TLS, read no byte past the packet: a client sends its TLS ClientHello right
        # after the SSL request, and those bytes belong to the TLS handshake, not to us.
        self._exact = True

    def replace_socket(self, sock: socket.socket) -> None:
        """Continue on a TLS-wrapped socket (the buffer must be empty then)."""
        if self._buffer:
            raise ProtocolError("data after the TLS request")
        self.sock = sock
        self._exact = False

    def buffered(self) -> bool:
        """Whether a packet (or part of one) is already read from the socket."""
        return bool(self._buffer)

    def _fill(self, wanted: int) -> None:
        while len(self._buffer) < wanted:
            missing = wanted - len(self._buffer)
            chunk = self.sock.recv(missing if self._exact else max(65536, missing))
            if not chunk:
                raise ProtocolError("connection closed")
            self._buffer += chunk

    def read_raw(self) -> bytes:
        """One packet with its 4-byte header, as it came."""
        self._fill(HEADER)
        length = self._buffer[0] | self._buffer[1] << 8 | self._buffer[2] << 16
        if length > self.limit:
            raise TooLarge(f"packet of {length} bytes is over the limit")
        self._fill(HEADER + length)
        raw = bytes(self._buffer[: HEADER + length])
        del self._buffer[: HEADER + length]
        return raw

    def read_payload(self) -> tuple[int, bytes]:
        """(sequence id, payload) of one logical packet, joining continuation packets."""
        raw = self.read_raw()
        sequence, payload = raw[3], raw[HEADER:]
        total = len(payload)
        while len(raw) - HEADER == MAX_PAYLOAD:
            raw = self.read_raw()
            total += len(raw) - HEADER
            if total > self.limit:
                raise TooLarge(f"packet of more than {self.limit} bytes")
            sequence, payload = raw[3], payload + raw[HEADER:]
        return sequence, payload

    def send(self, data: bytes | bytearray) -> None:
        """Send bytes that are already framed."""
        self.sock.sendall(data)


def frame(payload: bytes, sequence: int) -> bytes:
    """A payload framed as packets (split at 16 MiB) starting at `sequence`."""
    out = bytearray()
    while True:
        chunk, payload = payload[:MAX_PAYLOAD], payload[MAX_PAYLOAD:]
        out += struct.pack("<I", len(chunk))[:3] + bytes([sequence & 0xFF]) + chunk
        sequence += 1
        if len(chunk) < MAX_PAYLOAD:
            return bytes(out)


def lenenc_int(value: int) -> bytes:
    """A length-encoded integer."""
    if value < 251:
        return bytes([value])
    if value < 1 << 16:
        return b"\xfc" + struct.pack("<H", value)
    if value < 1 << 24:
        return b"\xfd" + struct.pack("<I", value)[:3]
    return b"\xfe" + struct.pack("<Q", value)


def read_lenenc(data: bytes, at: int) -> tuple[int, int]:
    """(value, next offset) of a length-encoded integer."""
    first = data[at]
    if first < 251:
        return first, at + 1
    if first == 0xFC:
        return struct.unpack_from("<H", data, at + 1)[0], at + 3
    if first == 0xFD:
        return int.from_bytes(data[at + 1 : at + 4], "little"), at + 4
    if first == 0xFE:
        return struct.unpack_from("<Q", data, at + 1)[0], at + 9
    raise ProtocolError("bad length-encoded integer")


def greeting(connection_id: int, salt: bytes, capabilities: int, status: int) -> bytes:
    """The server's first packet (Protocol::HandshakeV10), offering mysql_native_password."""
    return (
        b"\x0a"
        + SERVER_VERSION
        + b"\0"
        + struct.pack("<I", connection_id & 0xFFFFFFFF)
        + salt[:8]
        + b"\0"
        + struct.pack("<H", capabilities & 0xFFFF)
        + bytes([UTF8MB4_GENERAL_CI])
        + struct.pack("<H", status)
        + struct.pack("<H", capabilities >> 16)
        + bytes([len(salt) + 1])
        + b"\0" * 10
        + salt[8:]
        + b"\0"
        + b"mysql_native_password\0"
    )


def ok_packet(status: int, affected: int = 0, insert_id: int = 0, warnings: int = 0) -> bytes:
    """An OK packet payload."""
    return (
        b"\x00"
        + lenenc_int(affected)
        + lenenc_int(insert_id)
        + struct.pack("<HH", status, warnings)
    )


def err_packet(code: int, state: str, message: str) -> bytes:
    """An ERR packet payload with its SQLSTATE marker."""
    return (
        b"\xff"
        + struct.pack("<H", code)
        + b"#"
        + state.encode("ascii")[:5]
        + message.encode("utf-8", "replace")
    )


def auth_switch(plugin: bytes, data: bytes) -> bytes:
    """An AuthSwitchRequest payload."""
    return b"\xfe" + plugin + b"\0" + data


def status_of_ok(payload: bytes) -> int:
    """The server status flags of an OK packet (0x00 or a 0xfe OK)."""
    _, at = read_lenenc(payload, 1)
    _, at = read_lenenc(payload, at)
    return struct.unpack_from("<H", payload, at)[0]


def status_of_eof(payload: bytes) -> int:
    """The server status flags of an EOF packet."""
    return struct.unpack_from("<H", payload, 3)[0] if len(payload) >= 5 else 0


def is_eof(payload: bytes) -> bool:
    """An EOF packet (0xfe and short), not a row that starts with 0xfe."""
    return payload[:1] == b"\xfe" and len(payload) < 9


def error_of(payload: bytes) -> tuple[int, str]:
    """(code, message) of an ERR packet."""
    code = struct.unpack_from("<H", payload, 1)[0]
    message = payload[9:] if payload[3:4] == b"#" else payload[3:]
    return code, message.decode("utf-8", "replace")


IN_TRANSACTION = SERVER_STATUS.SERVER_STATUS_IN_TRANS
AUTOCOMMIT = SERVER_STATUS.SERVER_STATUS_AUTOCOMMIT
MORE_RESULTS = SERVER_STATUS.SERVER_MORE_RESULTS_EXISTS
COM_QUERY_BYTE = b"\x03"

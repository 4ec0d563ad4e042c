"""Relaying one command's response from a database connection to the client, packet by packet.

The proxy reads each response to its end (it must see the final OK or EOF packet's status
flags to know whether a transaction is still open) and passes the packets on unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pymysql.constants import SERVER_STATUS

from .wire import (
    HEADER,
    MAX_PAYLOAD,
    MORE_RESULTS,
    PacketStream,
    ProtocolError,
    error_of,
    is_eof,
    read_lenenc,
    status_of_eof,
    status_of_ok,
)

FLUSH_BYTES = 256 * 1024
Sink = Callable[[bytes], None]


@dataclass
class Outcome:
    """How a response ended: the last status flags seen, and the error if it was one."""

    status: int | None = None
    error: tuple[int, str] | None = None


class _Relay:
    """Reads packets from the database, hands them to the sink in batches."""

    def __init__(self, stream: PacketStream, sink: Sink | None) -> None:
        self.stream, self.sink = stream, sink
        self.out = bytearray()

    def packet(self) -> bytes:
        """The next logical packet's payload (continuations passed on with it)."""
        raw = self.stream.read_raw()
        self._keep(raw)
        payload = raw[HEADER:]
        if len(payload) == MAX_PAYLOAD:
            while True:
                more = self.stream.read_raw()
                self._keep(more)
                if len(more) - HEADER < MAX_PAYLOAD:
                    break
            return payload[:9]  # only the first bytes of a huge row matter to us
        return payload

    def _keep(self, raw: bytes) -> None:
        if self.sink is None:
            return
        self.out += raw
        if len(self.out) >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.sink is not None and self.out:
            self.sink(bytes(self.out))
            self.out.clear()

    def until_eof(self) -> int:
        """Column definitions or rows up to their EOF packet; its status flags."""
        while True:
            payload = self.packet()
            if is_eof(payload):
                return status_of_eof(payload)
            if payload[:1] == b"\xff":
                raise _ErrorInside(error_of(payload))


class _ErrorInside(Exception):
    def __init__(self, error: tuple[int, str]) -> None:
        super().__init__(error)
        self.error = error


def relay_query(stream: PacketStream, sink: Sink | None) -> Outcome:
    """COM_QUERY / COM_STMT_EXECUTE: OK, ERR or result sets, following MORE_RESULTS."""
    relay = _Relay(stream, sink)
    outcome = Outcome()
    try:
        while True:
            payload = relay.packet()
            first = payload[:1]
            if first == b"\xff":
                outcome.error = error_of(payload)
                break
            if first == b"\x00":
                outcome.status = status_of_ok(payload)
            elif first == b"\xfb":
                raise ProtocolError("LOCAL INFILE is not offered by the proxy")
            else:
                columns, _ = read_lenenc(payload, 0)
                for _ in range(columns):
                    relay.packet()
                status = relay.until_eof()
                if not status & SERVER_STATUS.SERVER_STATUS_CURSOR_EXISTS:
                    status = relay.until_eof()  # the rows
                outcome.status = status
            if not outcome.status or not outcome.status & MORE_RESULTS:
                break
    except _ErrorInside as inside:
        outcome.error = inside.error
    relay.flush()
    return outcome


def relay_prepare(stream: PacketStream, sink: Sink | None) -> Outcome:
    """COM_STMT_PREPARE: the statement's OK with its parameter and column definitions."""
    relay = _Relay(stream, sink)
    payload = relay.packet()
    outcome = Outcome()
    if payload[:1] == b"\xff":
        outcome.error = error_of(payload)
    else:
        columns = int.from_bytes(payload[5:7], "little")
        params = int.from_bytes(payload[7:9], "little")
        for count in (params, columns):
            if count:
                for _ in range(count):
                    relay.packet()
                relay.until_eof()
    relay.flush()
    return outcome


def relay_until_eof(stream: PacketStream, sink: Sink | None) -> Outcome:
    """COM_FIELD_LIST and COM_STMT_FETCH: packets up to an EOF, or an ERR."""
    relay = _Relay(stream, sink)
    outcome = Outcome()
    try:
        outcome.status = relay.until_eof()
    except _ErrorInside as inside:
        outcome.error = inside.error
    relay.flush()
    return outcome


def relay_one(stream: PacketStream, sink: Sink | None) -> Outcome:
    """A single-packet answer (COM_STATISTICS, COM_SET_OPTION's EOF, COM_STMT_RESET's OK)."""
    relay = _Relay(stream, sink)
    payload = relay.packet()
    outcome = Outcome()
    if payload[:1] == b"\xff":
        outcome.error = error_of(payload)
    elif payload[:1] == b"\x00" and len(payload) >= 7:
        outcome.status = status_of_ok(payload)
    relay.flush()
    return outcome

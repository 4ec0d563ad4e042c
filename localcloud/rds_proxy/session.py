"""One client connection to the proxy: handshake, authentication, then commands.

The session answers the handshake itself (TLS on the same port when the client asks for it,
mysql_native_password against the secret, or an IAM token over mysql_clear_password), keeps
the client's tracked session state, and borrows a database connection from the pool for each
transaction: the server status flags of the last OK or EOF packet say when the transaction
has ended and the connection can go back. Pinning conditions keep the connection until the
client disconnects.
"""

from __future__ import annotations

import _socket
import contextlib
import hmac
import logging
import secrets
import select
import socket
import ssl
import struct
import time
from collections.abc import Callable

from pymysql import _auth
from pymysql.charset import charset_by_id, charset_by_name
from pymysql.constants import CLIENT, COMMAND, SERVER_STATUS

from .iam_tokens import check_token
from .pool import Backend, BorrowTimeout, ConnectFailed
from .responses import Outcome, Sink, relay_one, relay_prepare, relay_query, relay_until_eof
from .runtime import ProxyRuntime
from .statements import Meaning, classify
from .wire import (
    AUTOCOMMIT,
    IN_TRANSACTION,
    SERVER_CAPABILITIES,
    PacketStream,
    ProtocolError,
    TooLarge,
    auth_switch,
    err_packet,
    frame,
    greeting,
    ok_packet,
    read_lenenc,
)

log = logging.getLogger("localcloud.rds_proxy")

CLIENT_PACKET_LIMIT = 64 * 1024 * 1024  # Aurora MySQL 3's default max_allowed_packet
HANDSHAKE_LIMIT = 64 * 1024
HANDSHAKE_SECONDS = 10.0
_SALT_CHARS = bytes(range(33, 127))
_COM_RESET_CONNECTION = 0x1F
_NO_RESPONSE = {COMMAND.COM_STMT_CLOSE, COMMAND.COM_STMT_SEND_LONG_DATA}
_ON_PINNED = {
    COMMAND.COM_STMT_EXECUTE: relay_query,
    COMMAND.COM_STMT_FETCH: relay_until_eof,
    COMMAND.COM_STMT_RESET: relay_one,
}
_OFF = {"0", "off", "false"}


class ClientGone(Exception):
    """The client went away while the proxy was answering it."""


class ClientSession:
    """A client connection, served on its own thread until it closes."""

    def __init__(self, sock: socket.socket, runtime: ProxyRuntime, connection_id: int) -> None:
        self.sock = sock
        self.runtime = runtime
        self.id = connection_id
        self.stream = PacketStream(sock, HANDSHAKE_LIMIT)
        self.tls = False
        self.user = ""
        self.password = ""  # the database password from the secret
        self.state: dict[str, str] = {}
        self.backend: Backend | None = None
        self.pinned = False
        self.status = AUTOCOMMIT

    # ----- the connection's life ---------------------------------------------------------

    def run(self) -> None:
        """Serve the client until it quits, idles out or breaks the protocol."""
        metrics = self.runtime.metrics
        metrics.count("ClientConnectionsReceived")
        opened = False
        try:
            self.sock.settimeout(HANDSHAKE_SECONDS)
            if not self._handshake():
                metrics.count("ClientConnectionsSetupFailedAuth")
                return
            opened = True
            self.runtime.client_opened(self.tls)
            metrics.count("ClientConnectionsSetupSucceeded")
            self._serve()
        except TooLarge:
            with contextlib.suppress(OSError):
                message = "Got a packet bigger than 'max_allowed_packet' bytes"
                self.stream.send(frame(err_packet(1153, "08S01", message), 1))
        except (ProtocolError, OSError, ClientGone):
            pass
        except Exception:
            log.exception("proxy %s: session %s failed", self.runtime.name, self.id)
            self.pinned = True  # the database connection's state is unknown: never reuse it
            if self.backend is not None:
                self.backend.pinned = True
        finally:
            self._release_on_close()
            if opened:
                self.runtime.client_closed(self.tls)
                metrics.count("ClientConnectionsClosed")
            with contextlib.suppress(OSError):
                self.sock.close()

    def _handshake(self) -> bool:
        """Greeting, optional TLS, authentication; True when the client is in."""
        runtime = self.runtime
        salt = bytes(secrets.choice(_SALT_CHARS) for _ in range(20))
        capabilities = SERVER_CAPABILITIES | (CLIENT.SSL if runtime.tls else 0)
        self.stream.send(frame(greeting(self.id, salt, capabilities, AUTOCOMMIT), 0))
        sequence, payload = self.stream.read_payload()
        if len(payload) < 32:
            raise ProtocolError("short handshake response")
        flags = struct.unpack_from("<I", payload)[0]
        if flags & CLIENT.SSL and runtime.tls is not None:
            try:
                self.sock = runtime.tls.wrap_socket(self.sock, server_side=True)
            except (ssl.SSLError, OSError) as error:
                runtime.log(f"TLS handshake failed for a client connection: {error}")
                return False
            self.tls = True
            self.stream.replace_socket(self.sock)
            sequence, payload = self.stream.read_payload()
            if len(payload) < 32:
                raise ProtocolError("short handshake response")
            flags = struct.unpack_from("<I", payload)[0]
        sequence += 1
        if not self.tls and (runtime.settings.require_tls or runtime.settings.iam_required):
            self._send_error(3159, "HY000", "This RDS Proxy requires TLS connections.", sequence)
            return False
        user, response, database, plugin, collation = _parse_response(payload, flags)
        password = runtime.credentials(user)
        if runtime.requires_iam(user):
            token = response
            if plugin != b"mysql_clear_password":
                self.stream.send(frame(auth_switch(b"mysql_clear_password", b""), sequence))
                sequence, token = self.stream.read_payload()
                sequence += 1
            problem = check_token(
                token.rstrip(b"\0").decode("utf-8", "replace"),
                user, runtime.host, runtime.port, runtime.region,
            )  # fmt: skip
            if problem is None and password is None:
                problem = "no secret of the proxy holds this user's credentials"
            response = token
        else:
            if plugin not in (b"", b"mysql_native_password"):
                self.stream.send(
                    frame(auth_switch(b"mysql_native_password", salt + b"\0"), sequence)
                )
                sequence, response = self.stream.read_payload()
                sequence += 1
            problem = _native_password_problem(password, salt, response)
        if problem is not None:
            runtime.log(f"Authentication failed for user {user!r}: {problem}")
            using = "YES" if response.strip(b"\0") else "NO"
            message = f"Access denied for user '{user}'@'%' (using password: {using})"
            self._send_error(1045, "28000", message, sequence)
            return False
        self.user, self.password = user, password or ""
        self.state = {"names": _charset_name(collation)}
        if database:
            self.state["schema"] = database
        self.stream.send(frame(ok_packet(AUTOCOMMIT), sequence))
        self.stream.limit = CLIENT_PACKET_LIMIT
        if runtime.settings.debug_logging:
            runtime.log(f"A new client connected from {self._peer()} as {user!r}, TLS {self.tls}.")
        return True

    def _serve(self) -> None:
        """Commands until COM_QUIT, an idle timeout or a broken connection."""
        while True:
            self.sock.settimeout(self.runtime.settings.idle_client_timeout)
            try:
                _, payload = self.stream.read_payload()
            except TimeoutError:
                self.runtime.log(
                    f"The client session was idle for more than the IdleClientTimeout "
                    f"({self.runtime.settings.idle_client_timeout:g} s) and was closed."
                )
                return
            self.sock.settimeout(None)
            if not payload or payload[0] == COMMAND.COM_QUIT:
                return
            if not self._command(payload):
                return

    def _command(self, payload: bytes) -> bool:
        """Answer one command; False when the session must end."""
        command = payload[0]
        if command == COMMAND.COM_PING:
            self.stream.send(frame(ok_packet(self.status), 1))
            return True
        if command == COMMAND.COM_QUERY:
            meaning = classify(payload[1:])
            if self.backend is None and meaning.tracked and not meaning.pin_reason:
                return self._track(meaning)
            return self._forward(payload, relay_query, meaning, query=True)
        if command == COMMAND.COM_INIT_DB:
            schema = payload[1:].decode("utf-8", "replace")
            return self._forward(payload, relay_one, Meaning(schema=schema))
        if command == COMMAND.COM_STMT_PREPARE:
            return self._forward(payload, relay_prepare, Meaning(pin_reason="a prepared statement"))
        if command == COMMAND.COM_SET_OPTION:
            return self._forward(payload, relay_one, Meaning(pin_reason="COM_SET_OPTION"))
        if command in (COMMAND.COM_FIELD_LIST, COMMAND.COM_STATISTICS):
            relay = relay_until_eof if command == COMMAND.COM_FIELD_LIST else relay_one
            return self._forward(payload, relay, Meaning())
        if command in _ON_PINNED or command in _NO_RESPONSE:
            if self.backend is None or not self.pinned:
                if command not in _NO_RESPONSE:
                    message = "Unknown prepared statement handler given to mysqld_stmt_execute"
                    self._send_error(1243, "HY000", message, 1)
                return True
            if command in _NO_RESPONSE:
                self.backend.stream.send(frame(payload, 0))
                return True
            query = command == COMMAND.COM_STMT_EXECUTE
            return self._forward(payload, _ON_PINNED[command], Meaning(), query=query)
        if command == _COM_RESET_CONNECTION and not self.pinned:
            names = self.state.get("names", "utf8mb4")
            self.state = {"names": names}
            self.status = AUTOCOMMIT
            self.stream.send(frame(ok_packet(self.status), 1))
            return True
        if command == _COM_RESET_CONNECTION:
            return self._forward(payload, relay_one, Meaning())
        self._send_error(1047, "08S01", "Unknown command", 1)
        return True

    def _track(self, meaning: Meaning) -> bool:
        """A SET of tracked variables outside a transaction: kept with the session, answered
        by the proxy; a database connection gets these values when the session borrows one."""
        self.runtime.metrics.query(self.tls, None, None)
        for key in ("names", "character set"):
            if key in meaning.tracked and not _known_charset(meaning.tracked[key]):
                value = meaning.tracked[key].split()[0]
                message = f"Variable 'character_set_client' can't be set to the value of '{value}'"
                self._send_error(1231, "42000", message, 1)
                return True
        self.state.update(meaning.tracked)
        off = self.state.get("autocommit", "1").strip("'\"").lower() in _OFF
        self.status = 0 if off else AUTOCOMMIT
        self.stream.send(frame(ok_packet(self.status), 1))
        return True

    # ----- forwarding --------------------------------------------------------------------

    def _forward(
        self,
        payload: bytes,
        relay: Callable[[PacketStream, Sink | None], Outcome],
        meaning: Meaning,
        query: bool = False,
    ) -> bool:
        """Send a command on a borrowed connection and relay its response to the client."""
        runtime, metrics = self.runtime, self.runtime.metrics
        received = time.monotonic()
        backend = self._borrow()
        if backend is None:
            if query:
                metrics.query(self.tls, None, None)
            return True
        sent = time.monotonic()
        try:
            backend.stream.send(frame(payload, 0))
            if not self._wait_for_answer(backend):
                runtime.log(
                    f"The client went away during a query; database connection "
                    f"{backend.thread_id} was ended."
                )
                self._end_backend(kill=True)
                return False
            outcome = relay(backend.stream, self._to_client)
        except ClientGone:
            self._end_backend(kill=True)
            return False
        except (ProtocolError, OSError) as error:
            runtime.log(f"The database connection {backend.thread_id} was lost: {error}")
            self._end_backend(kill=False)
            message = "Lost connection to MySQL server during query"
            with contextlib.suppress(OSError):
                self._send_error(2013, "HY000", message, 1)
            return False
        done = time.monotonic()
        if query:
            metrics.query(self.tls, done - sent, done - received)
        self._after(backend, meaning, outcome)
        return True

    def _after(self, backend: Backend, meaning: Meaning, outcome: Outcome) -> None:
        """Follow the session state, pin if needed, and give the connection back if safe."""
        if outcome.error is None:
            self.state.update(meaning.tracked)
            if meaning.schema is not None:
                self.state["schema"] = meaning.schema
            if (
                outcome.status is not None
                and outcome.status & SERVER_STATUS.SERVER_STATUS_DB_DROPPED
            ):
                self.state.pop("schema", None)
            if not self.pinned:
                backend.state = dict(self.state)
        if outcome.status is not None:
            self.status = outcome.status
            in_transaction = bool(outcome.status & IN_TRANSACTION)
        else:  # an ERR: a transaction may have begun (autocommit off) or still be open
            off = self.state.get("autocommit", "1").strip("'\"").lower() in _OFF
            in_transaction = backend.in_transaction or off
        backend.in_transaction = in_transaction
        reason = meaning.pin_reason
        if reason and meaning.is_set and self.runtime.settings.exclude_variable_sets:
            reason = None
        if reason and not self.pinned:
            self.pinned = backend.pinned = True
            self.runtime.log(
                f"The client session was pinned to the database connection "
                f"[dbConnection={backend.thread_id}] for the remainder of the session. The proxy "
                f"can't reuse this connection until the session ends. Reason: {reason}."
            )
        if not self.pinned and not in_transaction:
            self.backend = None
            backend.pool.give_back(backend)

    def _borrow(self) -> Backend | None:
        """The session's database connection, borrowed now if it has none; None on error."""
        if self.backend is not None:
            return self.backend
        pool, metrics = self.runtime.pool, self.runtime.metrics
        started = time.monotonic()
        try:
            if pool is None:
                raise BorrowTimeout()
            metrics.count("DatabaseConnectionRequests")
            backend = pool.borrow(self.user, self.password, self.state)
        except BorrowTimeout:
            self.runtime.log("Timed-out waiting to acquire database connection.")
            message = "Timed-out waiting to acquire database connection"
            self._send_error(9501, "HY000", message, 1)
            return None
        except ConnectFailed as error:
            self.runtime.log(f"A database connection could not be opened: {error.message}")
            self._send_error(error.code, "HY000", error.message, 1)
            return None
        metrics.latency("DatabaseConnectionsBorrowLatency", time.monotonic() - started)
        self.backend = backend
        return backend

    def _wait_for_answer(self, backend: Backend) -> bool:
        """Wait for the database to answer; False if the client disconnects meanwhile."""
        if backend.stream.buffered():
            return True
        database = backend.stream.sock.fileno()
        poller = select.poll()  # not select(): a busy proxy has descriptors above 1024
        poller.register(database, select.POLLIN)
        poller.register(self.sock.fileno(), select.POLLIN)
        while True:
            ready = poller.poll()
            if any(fd == database for fd, _ in ready):
                return True
            try:  # peek at the raw socket, under TLS too: an empty read is the client's end
                peeked = _socket.socket.recv(self.sock, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except OSError:
                return False
            if not peeked:
                return False
            poller.unregister(self.sock.fileno())  # the client sent more: answer this first

    def _end_backend(self, kill: bool) -> None:
        """Stop using the session's database connection: killed, or closed as broken."""
        backend, self.backend = self.backend, None
        if backend is None:
            return
        if kill:
            backend.pool.kill(backend, self.password)
        else:
            backend.pool.give_back(backend, reusable=False)

    def _release_on_close(self) -> None:
        """The client is gone: a pinned connection closes, an open transaction rolls back."""
        backend = self.backend
        if backend is None:
            return
        pool, self.backend = backend.pool, None
        if backend.pinned:
            pool.give_back(backend, reusable=False)
            return
        try:
            backend.run("ROLLBACK")
            backend.in_transaction = False
            pool.give_back(backend)
        except (ConnectFailed, ProtocolError, OSError):
            pool.give_back(backend, reusable=False)

    # ----- replies -----------------------------------------------------------------------

    def _to_client(self, data: bytes) -> None:
        try:
            self.stream.send(data)
        except OSError as error:
            raise ClientGone() from error

    def _send_error(self, code: int, state: str, message: str, sequence: int) -> None:
        self.stream.send(frame(err_packet(code, state, message), sequence))

    def _peer(self) -> str:
        with contextlib.suppress(OSError):
            host, port = self.sock.getpeername()[:2]
            return f"{host}:{port}"
        return "?"


def _parse_response(payload: bytes, flags: int) -> tuple[str, bytes, str | None, bytes, int]:
    """(user, auth response, database, auth plugin, collation id) of a HandshakeResponse41."""
    if not flags & CLIENT.PROTOCOL_41:
        raise ProtocolError("only the 4.1 protocol is supported")
    collation = payload[8]
    at = 32
    end = payload.index(b"\0", at)
    user = payload[at:end].decode("utf-8", "replace")
    at = end + 1
    if flags & CLIENT.PLUGIN_AUTH_LENENC_CLIENT_DATA:
        length, at = read_lenenc(payload, at)
    elif flags & CLIENT.SECURE_CONNECTION:
        length, at = payload[at], at + 1
    else:
        length = payload.index(b"\0", at) - at
    response = payload[at : at + length]
    at += length
    database = None
    if flags & CLIENT.CONNECT_WITH_DB and at < len(payload):
        end = payload.index(b"\0", at)
        database = payload[at:end].decode("utf-8", "replace") or None
        at = end + 1
    plugin = b""
    if flags & CLIENT.PLUGIN_AUTH and at < len(payload):
        end = payload.find(b"\0", at)
        plugin = payload[at : end if end >= 0 else len(payload)]
    return user, response, database, plugin, collation


def _native_password_problem(password: str | None, salt: bytes, response: bytes) -> str | None:
    """None if the mysql_native_password response proves the password; otherwise why not."""
    if password is None:
        return "no secret of the proxy holds this user's credentials"
    expected = _auth.scramble_native_password(password.encode(), salt) if password else b""
    if not hmac.compare_digest(expected, response):
        return "the password does not match the secret"
    return None


def _known_charset(value: str) -> bool:
    """Whether SET NAMES / CHARACTER SET names a character set the proxy knows."""
    name = value.split()[0].strip("'\"`").lower()
    if name == "default":
        return True
    try:
        charset_by_name(name)
    except KeyError:
        return False
    return True


def _charset_name(collation: int) -> str:
    """The character set of a handshake's collation id (utf8mb4 when unknown)."""
    try:
        return charset_by_id(collation).name
    except KeyError:
        return "utf8mb4"

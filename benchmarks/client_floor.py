"""The boto3 client's own share of the portable figures: the same calls, answered by a replay.

Each call is made once against the local cloud and its answer recorded byte for byte (status
line, headers, body). A server in a process of its own then reads every request and sends the
recorded answer back, so the client does all it does for a real call (serialise, sign, send,
read, parse, check the answer) while the server does next to nothing. The time the local
cloud adds is the difference of real and replayed calls taken in alternating rounds
(`_paired`), so a busy minute of the machine moves both; the invoke rate against the replay is
the most this client process can drive against any server on this machine.

Run as `python -m benchmarks.client_floor`, this module is that server: it reads the answers
as JSON on stdin, prints its port, and exits when its stdin closes.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .timing import samples, summary
from .workload import (
    ECHO,
    TRUST,
    Endpoint,
    Sizes,
    create_function,
    create_table,
    get_item,
    invoke,
    invoke_rate,
    put_item,
)

REPO = Path(__file__).resolve().parents[1]
# What the replay sends for a request it has no recording of: the client fails loudly.
NOT_RECORDED = (
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 12\r\n\r\nnot recorded"
)
MAX_BODY = 1024 * 1024
PAIRED_ROUNDS = 6  # real and replayed calls alternate in rounds (see _paired)


def record(client: Any, call: Callable[[], Any]) -> dict[str, bytes]:
    """The answer to `call`'s request, as the endpoint sends it, keyed as the replay finds it.

    The request is captured as botocore sends it, then sent once more over a plain connection
    to read the answer's bytes (botocore keeps only what it parsed).
    """
    sent: list[Any] = []
    events = client.meta.events
    capture = events.register("before-send", lambda request, **_: sent.append(request))
    try:
        call()
    finally:
        events.unregister("before-send", capture)
    request = sent[-1]
    url = urlsplit(request.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        path = url.path + (f"?{url.query}" if url.query else "")
        connection.request(request.method, path, body=request.body, headers=dict(request.headers))
        answer = connection.getresponse()
        body = answer.read()
    finally:
        connection.close()
    head = [f"HTTP/1.1 {answer.status} {answer.reason}"]
    head += [
        f"{name}: {value}"
        for name, value in answer.getheaders()
        if name.lower() not in ("transfer-encoding", "connection", "content-length")
    ]
    head.append(f"Content-Length: {len(body)}")
    raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
    return {_key(url.path, request.headers.get("X-Amz-Target")): raw}


def _key(path: str, target: str | bytes | None) -> str:
    """JSON-protocol calls share a path and differ by X-Amz-Target; REST calls by path."""
    if isinstance(target, bytes):
        target = target.decode()
    return target or path


@contextlib.contextmanager
def replay(answers: dict[str, bytes]) -> Iterator[str]:
    """The URL of a replay server (its own process) answering with `answers`; stopped after."""
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.client_floor"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert server.stdin is not None and server.stdout is not None
    try:
        encoded = {key: base64.b64encode(raw).decode() for key, raw in answers.items()}
        server.stdin.write(json.dumps(encoded).encode() + b"\n")
        server.stdin.flush()
        port = int(server.stdout.readline() or b"0")
        if not port:
            raise RuntimeError("the replay server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stdin.close()  # the server exits when its stdin closes
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def measure(endpoint: Endpoint, sizes: Sizes) -> dict[str, Any]:
    """GetItem, PutItem and warm-invoke p50 and the echo invoke rate, against the replay."""
    ddb, lam = endpoint.client("dynamodb"), endpoint.client("lambda")
    suffix = uuid.uuid4().hex[:8]
    table, function, role = f"floor-{suffix}", f"floor-echo-{suffix}", f"floor-{suffix}"
    try:
        create_table(ddb, table)
        arn = endpoint.client("iam").create_role(
            RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST)
        )["Role"]["Arn"]
        create_function(lam, function, arn, ECHO)
        calls: dict[str, tuple[str, Callable[[Any], Any]]] = {
            "dynamodb_get": ("dynamodb", lambda c: get_item(c, table)),
            "dynamodb_put": ("dynamodb", lambda c: put_item(c, table, "floor")),
            "lambda_warm": ("lambda", lambda c: invoke(c, function)),
        }
        answers: dict[str, bytes] = {}
        for service, call in calls.values():
            client = endpoint.client(service)
            answers.update(record(client, lambda call=call, client=client: call(client)))
        with replay(answers) as url:
            replayed = Endpoint("replay", endpoint.session, url)
            results: dict[str, Any] = {}
            for key, (service, call) in calls.items():
                results[key] = _paired(
                    lambda: call(endpoint.client(service)),  # noqa: B023
                    lambda: call(replayed.client(service)),  # noqa: B023
                    sizes.latency_calls,
                )
            results["lambda_rate_echo"] = invoke_rate(replayed, function, sizes)
        return results
    finally:
        with contextlib.suppress(Exception):  # throwaway resources
            lam.delete_function(FunctionName=function)
        with contextlib.suppress(Exception):
            endpoint.client("iam").delete_role(RoleName=role)
        with contextlib.suppress(Exception):
            ddb.delete_table(TableName=table)


def _paired(real: Callable[[], Any], replayed: Callable[[], Any], calls: int) -> dict[str, Any]:
    """The replay's timings and the time the endpoint adds, from rounds taken in turn.

    Alternating rounds of real and replayed calls see the machine in the same state, so a
    slow minute of a shared machine moves both and not their difference.
    """
    real_ms: list[float] = []
    replay_ms: list[float] = []
    for turn in range(PAIRED_ROUNDS):
        size = calls // PAIRED_ROUNDS + (turn < calls % PAIRED_ROUNDS)  # `calls` in all
        real_ms += samples(real, size, warmup=2)
        replay_ms += samples(replayed, size, warmup=2)
    figure = summary(replay_ms)
    alongside = summary(real_ms)["median_ms"]
    return {
        **figure,
        "paired_median_ms": alongside,
        "added_ms": round(alongside - figure["median_ms"], 3),
    }


def _answer_each(connection: socket.socket, answers: dict[str, bytes]) -> None:
    """Read requests on one kept-alive connection and send each its recorded answer."""
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = connection.makefile("rb")
    with connection, reader:
        while line := reader.readline(65536):
            parts = line.split()
            path = urlsplit(parts[1].decode("latin-1")).path if len(parts) == 3 else ""
            length, target = 0, None
            while (header := reader.readline(65536)) not in (b"\r\n", b"\n", b""):
                name, _, value = header.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = min(int(value), MAX_BODY)
                elif name == b"x-amz-target":
                    target = value.strip().decode("latin-1")
            reader.read(length)
            connection.sendall(answers.get(_key(path, target), NOT_RECORDED))


def _serve() -> None:
    """The replay server: answers from stdin, port on stdout, until stdin closes."""
    encoded = json.loads(sys.stdin.readline())
    answers = {key: base64.b64decode(raw) for key, raw in encoded.items()}
    listener = socket.create_server(("127.0.0.1", 0))  # loopback only
    print(listener.getsockname()[1], flush=True)

    def accept_forever() -> None:
        while True:
            connection, _ = listener.accept()
            threading.Thread(target=_answer_each, args=(connection, answers), daemon=True).start()

    threading.Thread(target=accept_forever, daemon=True).start()
    sys.stdin.read()  # returns when the benchmark closes the pipe


if __name__ == "__main__":
    _serve()

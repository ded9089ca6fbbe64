"""A fault-injecting HTTP proxy on loopback, between `seedvar sweep` and `seedvar server`.

It reads each request whole (head and body), then forwards it or injects a fault:
- `status`: answers an error status itself (503 by default), as a load balancer does while the server
  restarts; the request never reaches the server.
- `stall`: never answers, until the client gives up (its MLFLOW_HTTP_REQUEST_TIMEOUT); not forwarded.
- `lost_reply`: forwards the request, waits for the server's whole answer, then cuts the connection
  without passing the answer on: the server did the work, the client cannot know it.
- `cut_request`: forwards the head and half the body, then cuts both connections: the server drops
  the partial request, the client sees its connection reset.

Faults are planned per request, not per second: `Fault(kind, match, nth, count, body)` fires on the nth
request whose first line ("POST /api/2.0/mlflow/runs/create") contains `match` and whose body contains
`body`, and on the count - 1 matching requests after it, so a test does not depend on how fast this
machine is. `outage(kind)` gives every request that fault until `heal()`, from now on or from the answer
to a given request on. `fired` and `log` say what was injected and what passed.

Every request goes upstream on a connection of its own with `Connection: close`, so the upstream's
answer ends where its connection ends and the proxy never parses a response; the client then reconnects
for its next request (keep-alive is lost, which costs a loopback connect per request).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from dataclasses import dataclass

KINDS = ("status", "stall", "lost_reply", "cut_request")
REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass
class Fault:
    """`kind` on the `nth` (1-based) request whose first line contains `match` and whose body contains
    `body`, and on the matching requests after it until `count` have had it."""

    kind: str
    match: str = ""
    nth: int = 1
    count: int = 1
    status: int = 503  # the answer of a `status` fault
    body: str = ""
    seen: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault {self.kind!r}: one of {', '.join(KINDS)}")

    @property
    def done(self) -> bool:
        return self.fired >= self.count

    def __str__(self) -> str:
        what = f"{self.status}" if self.kind == "status" else self.kind
        where = repr(self.match or "any request") + (f" with {self.body!r}" if self.body else "")
        return f"{what} on {where} #{self.nth}" + (f" x{self.count}" if self.count > 1 else "")


class FaultyProxy:
    """Listens on 127.0.0.1 (a free port) and forwards to 127.0.0.1:upstream_port, injecting faults."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.plan: list[Fault] = []
        self.fired: list[tuple[str, str]] = []  # (fault, request line) for every injected fault
        self.log: list[str] = []  # every request line, in arrival order
        self._outage: Fault | None = None
        self._trigger: tuple[Fault, Fault] | None = None  # (the request that starts it, the outage)
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="faulty-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the proxy did not start")
        self.uri = f"http://127.0.0.1:{self.port}"

    # -- the test's side ----------------------------------------------------------------------------
    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self.plan.extend(faults)

    def outage(self, kind: str = "status", status: int = 503, after: Fault | None = None) -> None:
        """Every request gets this fault until heal(): from now on, or from the moment the server has
        answered a request matching `after` (its match and body), whatever the machine's speed."""
        with self._lock:
            if after is None:
                self._outage = Fault(kind, status=status, count=10**9)
            else:
                self._trigger = (after, Fault(kind, status=status, count=10**9))

    def heal(self) -> None:
        with self._lock:
            self._outage = self._trigger = None

    def _answered(self, line: str, body: str) -> None:
        """A request went through: start a planned outage if it was the trigger."""
        with self._lock:
            if self._trigger is not None and self._trigger[0].match in line and self._trigger[0].body in body:
                self._outage, self._trigger = self._trigger[1], None

    def pending(self) -> list[str]:
        """Planned faults that have not fired in full (the run made fewer such requests than planned)."""
        with self._lock:
            return [f"{f} (fired {f.fired})" for f in self.plan if not f.done]

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    # -- the proxy's side ---------------------------------------------------------------------------
    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    def _decide(self, line: str, body: str) -> Fault | None:
        """The fault this request gets, if any; every matching planned fault counts the request."""
        with self._lock:
            self.log.append(line)
            if self._outage is not None:
                chosen = self._outage
            else:
                chosen = None
                for fault in self.plan:
                    if fault.match not in line or fault.body not in body or fault.done:
                        continue
                    fault.seen += 1
                    # a fault due while another fires on this request waits for the next match
                    if chosen is None and fault.seen >= fault.nth:
                        chosen = fault
            if chosen is not None:
                chosen.fired += 1
                self.fired.append((str(chosen), line))
            return chosen

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_request(reader)
            if request is None:
                return
            head, body = request
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            text = body.decode("latin-1")
            fault = self._decide(line, text)
            if fault is None:
                writer.write(await self._forward(_closing(head), body))
                await writer.drain()
                self._answered(line, text)
            elif fault.kind == "status":
                text = f"{fault.status} {REASONS.get(fault.status, 'Error')} (injected by the test proxy)\n"
                writer.write(
                    f"HTTP/1.1 {fault.status} {REASONS.get(fault.status, 'Error')}\r\n"
                    f"Content-Type: text/plain\r\nContent-Length: {len(text)}\r\nConnection: close\r\n\r\n"
                    f"{text}".encode()
                )
                await writer.drain()
            elif fault.kind == "stall":
                while await reader.read(65536):  # until the client gives up and closes
                    pass
            elif fault.kind == "lost_reply":
                await self._forward(_closing(head), body)  # the server has answered: drop it
                _reset(writer)
            elif fault.kind == "cut_request":
                _, up = await asyncio.open_connection("127.0.0.1", self.upstream_port)
                up.write(_closing(head) + body[: len(body) // 2])
                await up.drain()
                _reset(up)
                _reset(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _forward(self, head: bytes, body: bytes) -> bytes:
        """The upstream's whole answer to one request (it closes the connection after it)."""
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            up_writer.write(head + body)
            await up_writer.drain()
            return await up_reader.read()
        finally:
            up_writer.close()


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """One HTTP/1.1 request: its head (through the blank line) and its body (Content-Length or chunked)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # the client closed an idle connection
    headers = {}
    for raw in head.split(b"\r\n")[1:]:
        name, _, value = raw.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = b""
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            body += size_line + chunk
            if size == 0:
                return head, body
    return head, await reader.readexactly(int(headers.get(b"content-length", b"0")))


def _closing(head: bytes) -> bytes:
    """The same request head, asking the upstream to close the connection after its answer."""
    lines = [h for h in head.split(b"\r\n") if not h.lower().startswith(b"connection:") and h]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n"


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed peer or a middlebox does, not a clean FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()

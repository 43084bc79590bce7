"""Helpers for tests that talk to a real server: uvicorn on 127.0.0.1 (ephemeral port) in a thread, raw HTTP."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any, Iterator


@contextlib.contextmanager
def running(app: Any, *, timeout: float = 30.0) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 until the block ends; yields the base URL. Stopped (and joined) on exit."""
    import uvicorn

    from train.serve import bind_socket
    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", limit_concurrency=500))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        assert not thread.is_alive(), "server thread did not stop"


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def raw_request(base: str, head: str, body_parts: Any = (), *, timeout: float = 10.0) -> tuple[bytes, int]:
    """Send `head` (request line + headers, CRLF-terminated) and then the body parts until the server answers or
    closes; returns (the response bytes, how many body bytes the socket accepted)."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port_of(base)), timeout=timeout) as conn:
        conn.sendall(head.encode())
        conn.setblocking(False)
        response = b""
        for part in body_parts:
            response += _drain(conn)
            if response:
                break
            try:
                conn.setblocking(True)
                conn.settimeout(timeout)
                conn.sendall(part)
                sent += len(part)
                conn.setblocking(False)
            except (BrokenPipeError, ConnectionResetError, socket.timeout):
                break
        conn.setblocking(True)
        conn.settimeout(timeout)
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                response += chunk
                if b"\r\n\r\n" in response and _complete(response):
                    break
        except (ConnectionResetError, socket.timeout):
            pass
    return response, sent


def _drain(conn: socket.socket) -> bytes:
    try:
        return conn.recv(65536)
    except (BlockingIOError, InterruptedError):
        return b""
    except ConnectionResetError:
        return b""


def _complete(response: bytes) -> bool:
    head, _, body = response.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return False


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else 0


def dir_bytes(path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@contextlib.contextmanager
def serve_process(args: list[str], *, env: dict, cwd: Any = None, timeout: float = 120.0) -> Iterator[str]:
    """`cinectrl serve ARGS --port P` as a real process on 127.0.0.1; yields the base URL once /health answers;
    stopped by its PID (SIGTERM, then SIGKILL)."""
    import signal
    import subprocess

    import httpx
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([*args, "--port", str(port)], env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

"""Loaded by the Label Studio server under test (PYTHONPATH): logs every attempt to reach a host that is not
this machine, from any thread, through Python's audit hooks. The tests assert the log stays empty."""

import os
import socket
import sys

_LOG = os.environ.get("CINECTRL_NETAUDIT_LOG")
_LOCAL = ("127.", "::1", "localhost", "0.0.0.0")


def _remote(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    return isinstance(host, str) and host != "" and not host.startswith(_LOCAL)


def _hook(event, args):
    try:
        if event == "socket.connect":
            sock, address = args
            if sock.family in (socket.AF_INET, socket.AF_INET6) and _remote(address[0]):
                _write(f"connect {address!r}")
        elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr") and _remote(args[0]):
            _write(f"{event.split('.', 1)[1]} {args[0]!r}")
    except Exception:  # noqa: BLE001 - an audit hook must never break the server
        pass


def _write(line: str) -> None:
    with open(_LOG, "a") as fh:
        fh.write(f"{os.getpid()} {line}\n")


if _LOG:
    sys.addaudithook(_hook)

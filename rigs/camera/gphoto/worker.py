"""The worker process: one camera, one process, requests in and answers out over a socket.

Started by client.WorkerProcess as `python -m rigs.camera.gphoto.worker FD` with LANG=C, LC_ALL=C,
a private XDG_CONFIG_HOME and (for the virtual camera) VCAMERADIR already in its environment, so
gphoto2 is imported only after they are set. A segfault or abort here ends this process only; the
client reports it as CameraDisconnected.

Wire format (multiprocessing.connection, pickled tuples):
    request  (op, kwargs)            op in OPS
    answer   ("ok", value) | ("err", error class name, message, camera name)
"""

from __future__ import annotations

import os
import sys
from multiprocessing.connection import Connection
from typing import Any

OPS = ("open", "detect", "describe", "choices", "get", "set", "set_widget", "settings", "capture_still", "live_view",
       "movie_start", "movie_stop", "reopen", "files", "close", "ping")


def serve(conn: Connection) -> None:
    from ..protocol import CameraError      # noqa: PLC0415 - imported after the environment is fixed
    from . import device

    body: Any = None
    while True:
        try:
            op, kwargs = conn.recv()
        except (EOFError, OSError):        # the client went away without close(): exit() the body cleanly
            if body is not None:
                body.close()
            break
        try:
            if op not in OPS:
                raise CameraError(f"unknown worker request {op!r}")
            if op == "ping":
                result: Any = os.getpid()
            elif op == "detect":
                result = _detect(device)
            elif op == "open":
                applied = kwargs.pop("applied", None)
                body = device.Body(**kwargs)
                result = body.open(applied)
            elif body is None:
                raise CameraError(f"{op}: the camera is not open")
            elif op == "close":
                body.close()
                conn.send(("ok", None))
                break
            else:
                result = getattr(body, op)(**kwargs)
            conn.send(("ok", result))
        except CameraError as exc:
            conn.send(("err", type(exc).__name__, str(exc), exc.camera))
        except Exception as exc:  # noqa: BLE001 - everything else still becomes an answer, not a hang
            name = getattr(body, "name", "")
            conn.send(("err", "CameraError", f"{name}: {type(exc).__name__}: {exc}" if name else
                       f"{type(exc).__name__}: {exc}", name))


def _detect(device) -> list[dict[str, str]]:
    """Every detected body with its serial (opened briefly, one at a time, each with a new object)."""
    rows = []
    for model, port in device.detect():
        body = device.Body(port, sync_clock=False)
        try:
            info = body.open()
            rows.append({"model": model, "port": port, "serial": info["identity"]["serial"],
                         "name": info["name"], "error": ""})
        except Exception as exc:  # noqa: BLE001 - one unreadable body must not hide the others
            rows.append({"model": model, "port": port, "serial": "", "name": model, "error": str(exc)})
        finally:
            body.close()
    return rows


def main(argv: list[str]) -> None:
    fd = int(argv[1])
    os.dup2(2, 1)        # the protocol never shares a stream with anything libgphoto2 may print
    serve(Connection(fd))


if __name__ == "__main__":
    main(sys.argv)

"""Plain-text output and one-line errors for the capture and rig commands.

`say()` prints text as it is: plan keys such as `[axes.aperture]` and lists such as `[f/2.8, f/8]` are not
terminal markup, and lines are not re-wrapped. Commands wrap their work in `user_errors(...)`: a plan
problem, a refused take, a session owned by another process, a catalog that is not one, a folder that
cannot be written, a full disk, a camera or slider that is missing all end the same way: one
`error: <what, the value, the fix>` and no traceback.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
from typing import Iterator

from rich.text import Text

from ._common import console, err_console, fail


def say(text: object, *, err: bool = False) -> None:
    """Print one line of plain text (no markup, no highlighting, no re-wrapping)."""
    (err_console if err else console).print(Text(str(text)), highlight=False, soft_wrap=True)


def describe_os_error(exc: OSError) -> str:
    where = exc.filename or "a file"
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{where}: the disk is full ({reason}); free space and run the command again"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"cannot write {where} ({reason}); make the folder writable by this user (or mount the disk "
                "read-write) and run the command again")
    if exc.errno == errno.ENOENT:
        return f"{where}: no such file or folder; check the path"
    return f"{where}: {reason}"


def describe_sqlite_error(exc: sqlite3.DatabaseError, catalog: object = None) -> str:
    text = str(exc)
    where = f"the catalog {catalog}" if catalog else "the catalog"
    if "readonly" in text or "read-only" in text:
        return (f"cannot write {where} (read-only: {text}); make the lab folder and the catalog writable by this "
                "user, or mount the disk read-write")
    if "full" in text:
        return f"{where}: the disk is full ({text}); free space and run the command again"
    if "not a database" in text or "malformed" in text:
        return f"{where} is not a cinectrl catalog ({text}); pass the catalog's .db file with --catalog"
    if "unable to open" in text:
        return (f"cannot open {where} ({text}); check the folder exists and this user may read and write it "
                "(SQLite writes its journal beside the file)")
    return f"{where} cannot be used ({text}); pass a cinectrl catalog with --catalog"


@contextlib.contextmanager
def user_errors(device_hint: str = "", *, catalog: object = None) -> Iterator[None]:
    """Turn the toolkit's known errors into one-line exits; programming errors still raise."""
    from capture.catalog import CatalogError
    from capture.owner import SessionBusy
    from capture.plan import PlanError
    from capture.session import SessionRefused
    from capture.takes import TakeRefused
    from rigs.camera.protocol import CameraError
    from rigs.slider.protocol import SliderError

    try:
        yield
    except (PlanError, TakeRefused, SessionBusy, SessionRefused, CatalogError) as exc:
        fail(str(exc))
    except (CameraError, SliderError) as exc:
        fail(f"{exc}{device_hint}")
    except sqlite3.DatabaseError as exc:
        fail(describe_sqlite_error(exc, catalog))
    except ImportError as exc:
        fail(f"a driver this version lacks is needed: {exc}")
    except OSError as exc:
        fail(describe_os_error(exc))

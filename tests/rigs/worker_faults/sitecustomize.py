"""Faults the virtual camera cannot make, injected into a gphoto2 worker process at the library boundary.

A test puts this folder on PYTHONPATH and sets CINECTRL_TEST_WORKER_FAULT; the worker subprocess then
imports it at start-up (Python's `site` does), before any of our code runs:
- `delete`:  every Camera.file_delete fails with GP_ERROR_IO_WRITE (libgphoto2's virtual camera deletes
             any captured file, a real body in a bad state does not);
- `corrupt`: every download renamed into place has its last byte flipped on disk (a bad disk/cable).
Nothing happens without the variable: this file is inert in every other process.
"""

import os

_MODE = os.environ.get("CINECTRL_TEST_WORKER_FAULT", "")

if _MODE == "delete":
    import gphoto2 as _gp

    class _Camera(_gp.Camera):
        def file_delete(self, folder, name):
            raise _gp.GPhoto2Error(_gp.GP_ERROR_IO_WRITE)

    _gp.Camera = _Camera

if _MODE == "corrupt":
    _replace = os.replace

    def _corrupting_replace(src, dst, *args, **kwargs):
        _replace(src, dst, *args, **kwargs)
        if str(dst).lower().endswith(".jpg"):
            with open(dst, "r+b") as handle:
                handle.seek(-1, os.SEEK_END)
                last = handle.read(1)
                handle.seek(-1, os.SEEK_END)
                handle.write(bytes([last[0] ^ 0xFF]))

    os.replace = _corrupting_replace

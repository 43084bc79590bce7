"""A local Label Studio server in its own virtual environment, or an existing one named by URL + token.

The server never shares the toolkit's venv (it pins Django, pandas, openai...). Its data directory sits beside
the catalog; local-file serving is rooted at the catalog's folder so clip paths stored in the catalog map
directly to `/data/local-files/?d=<path>`. The token lives only in a user-readable credentials file or the
environment: never in the catalog, never printed.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

LABEL_STUDIO_VERSION = "1.23.2"
REPO_ROOT = Path(__file__).resolve().parent.parent


class ServerError(Exception):
    """A server problem the user can fix; the message names the fix and never contains the token."""


@dataclass(frozen=True)
class Connection:
    url: str
    token: str
    pid: int | None = None
    key: str = "local"  # how the catalog names this server: "local" for ours (any port), else the URL

    def __repr__(self) -> str:  # never leak the token through logs or tracebacks
        return f"Connection(url={self.url!r}, pid={self.pid})"


def data_dir_for(catalog_path: Path) -> Path:
    return Path(catalog_path).resolve().parent / ".labelstudio"


def venv_path() -> Path:
    return Path(os.environ.get("CINECTRL_LS_VENV", REPO_ROOT / ".venv-labelstudio"))


def ensure_venv(venv: Path | None = None) -> Path:
    """The label-studio executable, installing the pinned server into its own venv on first use (~70 s)."""
    venv = venv or venv_path()
    exe = venv / "bin" / "label-studio"
    if exe.exists():
        return exe
    try:
        if not (venv / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"label-studio=={LABEL_STUDIO_VERSION}"],
                       check=True, capture_output=True, timeout=900)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        out = getattr(exc, "stderr", b"") or b""
        raise ServerError(f"could not install label-studio=={LABEL_STUDIO_VERSION} into {venv}: "
                          f"{out.decode(errors='replace')[-400:]} (set CINECTRL_LS_VENV to an existing venv)") from None
    return exe


def credentials(data_dir: Path) -> dict[str, str]:
    """Admin user/password/token from CINECTRL_LS_USER/_PASSWORD/_TOKEN, else generated once into a 0600 file."""
    path = data_dir / "credentials.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    creds = {
        "user": os.environ.get("CINECTRL_LS_USER") or stored.get("user") or "admin@cinectrl.local",
        "password": os.environ.get("CINECTRL_LS_PASSWORD") or stored.get("password") or secrets.token_urlsafe(16),
        "token": os.environ.get("CINECTRL_LS_TOKEN") or stored.get("token") or secrets.token_hex(20),
    }
    if "@" not in creds["user"]:
        raise ServerError(f"CINECTRL_LS_USER={creds['user']!r} must look like an email (Label Studio requires it)")
    if creds != stored:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(creds, fh)
    return creds


def _server_env(catalog_path: Path, data_dir: Path, creds: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("USERNAME", "PASSWORD", "USER_TOKEN")}
    env.update({
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LABEL_STUDIO_USERNAME": creds["user"],
        "LABEL_STUDIO_PASSWORD": creds["password"],
        "LABEL_STUDIO_USER_TOKEN": creds["token"],
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(Path(catalog_path).resolve().parent),
        "LATEST_VERSION_CHECK": "false",
        "LABEL_STUDIO_COLLECT_ANALYTICS": "false",
    })
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as dead
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        r = httpx.get(url.rstrip("/") + "/health", timeout=timeout)
        return r.status_code == 200 and r.json().get("status") == "UP"
    except (httpx.HTTPError, ValueError):
        return False


def _state_file(data_dir: Path) -> Path:
    return data_dir / "server.json"


def read_state(data_dir: Path) -> dict | None:
    path = _state_file(data_dir)
    return json.loads(path.read_text()) if path.exists() else None


def start(catalog_path: Path, *, port: int | None = None, boot_timeout: float = 180.0,
          venv: Path | None = None, data_dir: Path | None = None) -> Connection:
    """Start (or reuse a running) server for this catalog; returns once /health says UP."""
    data_dir = data_dir or data_dir_for(catalog_path)
    state = read_state(data_dir)
    creds = credentials(data_dir)
    if state and _pid_alive(state["pid"]) and healthy(state["url"]):
        return Connection(state["url"], creds["token"], state["pid"])
    exe = ensure_venv(venv)
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}"
    env = _server_env(catalog_path, data_dir, creds)
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / "server.log", "ab")
    proc = subprocess.Popen([str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port)],
                            env=env, cwd=str(data_dir), stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    _state_file(data_dir).write_text(json.dumps({"url": url, "pid": proc.pid, "started_at": time.time()}))
    deadline = time.monotonic() + boot_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"Label Studio exited with code {proc.returncode} while starting; "
                              f"see {data_dir / 'server.log'}")
        if healthy(url):
            return Connection(url, creds["token"], proc.pid)
        time.sleep(0.5)
    stop(catalog_path, data_dir=data_dir)
    raise ServerError(f"Label Studio did not answer {url}/health within {boot_timeout:.0f} s; "
                      f"see {data_dir / 'server.log'}")


def stop(catalog_path: Path, *, data_dir: Path | None = None, timeout: float = 20.0) -> bool:
    """Stop the server this catalog started (by its recorded PID). False when none was running."""
    data_dir = data_dir or data_dir_for(catalog_path)
    state = read_state(data_dir)
    if not state:
        return False
    pid = int(state["pid"])
    was_alive = _pid_alive(pid)
    if was_alive:
        try:
            os.killpg(pid, signal.SIGTERM)  # own session: the dev server's reloader children go too
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _pid_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
    _state_file(data_dir).unlink(missing_ok=True)
    return was_alive


def _remote_config() -> dict[str, str]:
    name = os.environ.get("CINECTRL_LS_CONFIG")
    if not name:
        return {}
    path = Path(name).expanduser()
    try:
        mode = path.stat().st_mode & 0o777
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ServerError(f"CINECTRL_LS_CONFIG={name}: no such file; create it with "
                          '{"url": "http://host:8080", "token": "..."} or unset the variable') from None
    except (OSError, ValueError) as exc:
        raise ServerError(f"CINECTRL_LS_CONFIG={name} is not readable JSON ({type(exc).__name__}); expected "
                          '{"url": "http://host:8080", "token": "..."}') from None
    if not isinstance(data, dict) or not isinstance(data.get("url", ""), str) \
            or not isinstance(data.get("token", ""), str):
        raise ServerError(f"CINECTRL_LS_CONFIG={name} must hold a JSON object with string \"url\" and \"token\"")
    if data.get("token") and mode & 0o077:
        raise ServerError(f"CINECTRL_LS_CONFIG={name} holds a token but is readable by others (mode {mode:o}): "
                          f"run `chmod 600 {path}`")
    return {k: str(v) for k, v in data.items() if k in ("url", "token") and v}


def connect(catalog_path: Path, *, data_dir: Path | None = None) -> Connection:
    """The server to talk to: CINECTRL_LS_URL + CINECTRL_LS_TOKEN (either may come from the JSON file named by
    CINECTRL_LS_CONFIG, `{"url": ..., "token": ...}`, mode 0600; the environment wins), else ours."""
    remote = _remote_config()
    url = os.environ.get("CINECTRL_LS_URL") or remote.get("url")
    if url:
        token = os.environ.get("CINECTRL_LS_TOKEN") or remote.get("token")
        if not token:
            raise ServerError("CINECTRL_LS_URL is set but CINECTRL_LS_TOKEN is not: export the server's API token "
                              "or put \"token\" in the CINECTRL_LS_CONFIG file")
        return Connection(url.rstrip("/"), token, key=url.rstrip("/"))
    data_dir = data_dir or data_dir_for(catalog_path)
    state = read_state(data_dir)
    if not state or not _pid_alive(state["pid"]):
        raise ServerError(f"no Label Studio server running for {catalog_path}: run `cinectrl review server start "
                          f"--catalog {catalog_path}` or set CINECTRL_LS_URL and CINECTRL_LS_TOKEN")
    return Connection(state["url"], credentials(data_dir)["token"], state["pid"])


def add_annotator(catalog_path: Path, conn: Connection, email: str, password: str, *,
                  data_dir: Path | None = None) -> int:
    """Create an annotator account with a password (the REST API cannot set one; the server's own
    `reset_password` command on the same data dir does, ~5 s). Returns the user id."""
    from label_studio_sdk import LabelStudio

    data_dir = data_dir or data_dir_for(catalog_path)
    ls = LabelStudio(base_url=conn.url, api_key=conn.token)
    existing = [u for u in ls.users.list() if u.email == email]
    user_id = existing[0].id if existing else ls.users.create(username=email.split("@")[0], email=email).id
    r = subprocess.run([str(ensure_venv()), "reset_password", "--username", email, "--password", password],
                       env=_server_env(catalog_path, data_dir, credentials(data_dir)), cwd=str(data_dir),
                       capture_output=True, timeout=120)
    if r.returncode != 0:
        raise ServerError(f"could not set the password of {email}: {r.stderr.decode(errors='replace')[-300:]}")
    return int(user_id)

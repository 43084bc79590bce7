"""A local Label Studio server in its own virtual environment, or an existing one named by URL + token.

The server never shares the toolkit's venv (it pins Django, pandas, openai...). Its data directory sits beside
the catalog, private to the user (0700, files 0600: its SQLite holds every API token in clear); local-file
serving is rooted at the catalog's folder so clip paths stored in the catalog map directly to
`/data/local-files/?d=<path>`. Telemetry and error reporting are off, a lock makes two `server start` one
server, and the port is remembered. The token lives only in a user-readable credentials file or the
environment: never in the catalog, never printed.

The managed server keeps its database in SQLite inside that data dir (one workstation), or in PostgreSQL named by
`start(database="postgresql://user:pass@host:port/db")` (a team: several annotators at once; Label Studio's
production database). The database URL is remembered with the port in the 0600 state file and never printed
with its password.

A server is known by its *instance key* (its organization's id and creation time, read over the API), not
by the URL it was reached at: `http://localhost:8080`, `http://127.0.0.1:8080/` and the local server found
through the catalog are one server with one set of projects.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx

LABEL_STUDIO_VERSION = "1.23.2"
REPO_ROOT = Path(__file__).resolve().parent.parent
HTTP_TIMEOUT = 60.0
LS_SITE = Path(__file__).resolve().parent / "ls_site"
LS_SETTINGS_MODULE = "cinectrl_ls_settings"


class ServerError(Exception):
    """A server problem the user can fix; the message names the fix and never contains the token."""


@dataclass(frozen=True)
class Connection:
    url: str
    token: str
    pid: int | None = None
    key: str = ""              # the instance key, set by identify()

    def __repr__(self) -> str:  # never leak the token through logs or tracebacks
        return f"Connection(url={self.url!r}, pid={self.pid}, key={self.key!r})"


def canonical_url(url: str) -> str:
    """Scheme and host in lower case, default port dropped, no trailing slash: one spelling per address.
    An IPv6 literal keeps its brackets (`http://[::1]:8080`)."""
    parts = urlsplit(url.strip())
    scheme = (parts.scheme or "http").lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        raise ServerError(f"{url.strip()!r} has no valid port: expected e.g. http://host:8080") from None
    netloc = host if port is None or (scheme, port) in (("http", 80), ("https", 443)) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), "", ""))


def data_dir_for(catalog_path: Path) -> Path:
    return Path(catalog_path).resolve().parent / ".labelstudio"


def venv_path() -> Path:
    return Path(os.environ.get("CINECTRL_LS_VENV", REPO_ROOT / ".venv-labelstudio"))


def installed(venv: Path | None = None) -> bool:
    """Whether the server is already installed (else the first `start` installs it: a minute or two)."""
    return ((venv or venv_path()) / "bin" / "label-studio").exists()


def ensure_venv(venv: Path | None = None) -> Path:
    """The label-studio executable, installing the pinned server into its own venv on first use (~70 s)."""
    venv = venv or venv_path()
    exe = venv / "bin" / "label-studio"
    if exe.exists():
        return exe
    try:
        if not (venv / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        # The caller's PYTHONPATH (a test's audit hook, the toolkit's own tree) has no business inside pip.
        pip_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                        f"label-studio=={LABEL_STUDIO_VERSION}"],
                       check=True, capture_output=True, timeout=900, env=pip_env)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        out = getattr(exc, "stderr", b"") or b""
        raise ServerError(f"could not install label-studio=={LABEL_STUDIO_VERSION} into {venv}: "
                          f"{out.decode(errors='replace')[-400:]} (set CINECTRL_LS_VENV to an existing venv)") from None
    return exe


# ------------------------------------------------------------------------------------------- database

SQLITE = "sqlite"


@dataclass(frozen=True)
class Database:
    """A PostgreSQL database for the managed server, parsed from `postgresql://user[:password]@host[:port]/name`.
    No password in the URL: libpq's PGPASSWORD or ~/.pgpass supplies it (then it is on no command line)."""
    user: str
    password: str
    host: str
    port: int
    name: str

    def __str__(self) -> str:   # what messages and `server status` show: never the password
        return f"postgresql://{self.user}{':***' if self.password else ''}@{_bracket(self.host)}:{self.port}/{self.name}"

    __repr__ = __str__

    def url(self) -> str:
        """The full URL, password included: for the 0600 state file only."""
        pw = f":{quote(self.password, safe='')}" if self.password else ""
        return f"postgresql://{quote(self.user, safe='')}{pw}@{_bracket(self.host)}:{self.port}/{quote(self.name, safe='')}"

    def env(self) -> dict[str, str]:
        """Label Studio's settings (core/settings/base.py DATABASES_ALL['postgresql'], label_studio.py DJANGO_DB)."""
        return {"LABEL_STUDIO_DJANGO_DB": "postgresql", "LABEL_STUDIO_POSTGRE_NAME": self.name,
                "LABEL_STUDIO_POSTGRE_USER": self.user, "LABEL_STUDIO_POSTGRE_PASSWORD": self.password,
                "LABEL_STUDIO_POSTGRE_HOST": self.host, "LABEL_STUDIO_POSTGRE_PORT": str(self.port)}


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _masked(url: str) -> str:
    """A database URL as the user typed it, with any password replaced: safe to put in an error message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{netloc[0].split(':', 1)[0]}:***@{netloc[1]}"))


def parse_database(url: str | None) -> Database | None:
    """None for SQLite (`None`, "" or "sqlite"), else the PostgreSQL database; one clear error for anything else."""
    if url is None or url.strip().lower() in ("", SQLITE):
        return None
    text = url.strip()
    shown = _masked(text)
    fix = "expected postgresql://user:password@host:5432/dbname (or `sqlite`, the default)"
    try:
        parts = urlsplit(text)
        port = parts.port or 5432
    except ValueError:
        raise ServerError(f"--database {shown!r} has no valid port: {fix}") from None
    if parts.scheme.lower() not in ("postgresql", "postgres"):
        raise ServerError(f"--database {shown!r}: only PostgreSQL (postgresql://) or sqlite is supported: {fix}")
    name = unquote(parts.path.lstrip("/"))
    missing = [what for what, value in (("user", parts.username), ("host", parts.hostname), ("database name", name))
               if not value]
    if missing:
        raise ServerError(f"--database {shown!r} names no {' or '.join(missing)}: {fix}")
    if parts.query or parts.fragment or "/" in name:
        raise ServerError(f"--database {shown!r}: options after the database name are not supported "
                          f"(Label Studio takes only user, password, host, port and name): {fix}")
    return Database(unquote(parts.username or ""), unquote(parts.password or ""), parts.hostname or "", port, name)


def database_label(url: str | None) -> str:
    """What `server status` shows for a remembered database: never the password."""
    db = parse_database(url)
    return str(db) if db else "sqlite (in the data dir)"


def _check_postgres_reachable(db: Database, timeout: float = 5.0) -> None:
    """Fail fast with the database named, rather than a Label Studio traceback in the log after a long wait."""
    try:
        socket.create_connection((db.host, db.port), timeout=timeout).close()
    except OSError as exc:
        raise ServerError(f"cannot reach PostgreSQL at {_bracket(db.host)}:{db.port} for {db} "
                          f"({exc.strerror or type(exc).__name__}): is it running and listening there? "
                          "(`--database sqlite` for a one-workstation server)") from None


# ------------------------------------------------------------------------------------------- private files

def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, atomically (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def make_private(data_dir: Path) -> None:
    """Data dir 0700, everything in it 0700 (folders) / 0600 (files): the server's SQLite holds every API token
    in clear, `.env` its secret key. Also repairs a data dir made by an older cinectrl."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(data_dir, 0o700)
    for root, dirs, files in os.walk(data_dir):
        for name in dirs:
            _chmod_if_loose(Path(root) / name, 0o700)
        for name in files:
            _chmod_if_loose(Path(root) / name, 0o600)


def _chmod_if_loose(path: Path, mode: int) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
        os.chmod(path, mode)


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
        make_private(data_dir)
        _write_private(path, json.dumps(creds))
    return creds


# Every outbound channel Label Studio 1.23 has, closed. The Sentry DSNs default to HumanSignal's ingest hosts
# (core/settings/label_studio.py): an empty value turns the SDK off on the server and keeps the Sentry CDN
# script out of every page. Names carry the LABEL_STUDIO_ prefix, which Label Studio reads first.
# One channel has no switch: the "Heidi tips" view (core/views.py heidi_tips) fetches a JSON file from
# raw.githubusercontent.com whenever a page shows tips. So the server's HTTP(S) clients get a proxy on a closed
# local port: such a request fails at once on this machine instead of leaving it. Local addresses bypass it.
# CINECTRL_LS_OUTBOUND=allow keeps the caller's proxy settings (e.g. for cloud storage on the server).
DEAD_PROXY = "http://127.0.0.1:1"
NO_OUTBOUND_ENV = {name: DEAD_PROXY for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy",
                                                  "ALL_PROXY", "all_proxy")}
NO_OUTBOUND_ENV.update({"NO_PROXY": "localhost,127.0.0.1,::1", "no_proxy": "localhost,127.0.0.1,::1"})
QUIET_ENV = {
    "LABEL_STUDIO_SENTRY_DSN": "",
    "LABEL_STUDIO_FRONTEND_SENTRY_DSN": "",
    "LABEL_STUDIO_COLLECT_ANALYTICS": "false",
    "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
    "LATEST_VERSION_CHECK": "false",
    "LABEL_STUDIO_FEATURE_FLAGS_OFFLINE": "true",
    "LABEL_STUDIO_GOOGLE_LOGGING_ENABLED": "false",
}


def _server_env(catalog_path: Path, data_dir: Path, creds: dict[str, str],
                database: Database | None = None) -> dict[str, str]:
    # Label Studio reads LABEL_STUDIO_X, then HEARTEX_X, then bare X: a CI runner's USERNAME/PASSWORD/USER_TOKEN,
    # SENTRY_DSN or DJANGO_DB/POSTGRE_*/DATABASE_NAME must not leak into the admin bootstrap, the error reporting
    # or the choice of database.
    shadowed = {"USERNAME", "PASSWORD", "USER_TOKEN", "SENTRY_DSN", "FRONTEND_SENTRY_DSN", "DJANGO_DB",
                "DATABASE_NAME"}
    env = {k: v for k, v in os.environ.items() if k not in shadowed and not k.startswith("HEARTEX_")
           and not k.startswith(("POSTGRE_", "LABEL_STUDIO_POSTGRE_", "LABEL_STUDIO_DJANGO_DB",
                                 "LABEL_STUDIO_DATABASE_NAME"))}
    env.update(QUIET_ENV)
    if os.environ.get("CINECTRL_LS_OUTBOUND", "").lower() != "allow":
        env.update(NO_OUTBOUND_ENV)
    env.update({
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LABEL_STUDIO_USERNAME": creds["user"],
        "LABEL_STUDIO_PASSWORD": creds["password"],
        "LABEL_STUDIO_USER_TOKEN": creds["token"],
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(Path(catalog_path).resolve().parent),
    })
    env.update(database.env() if database else {"LABEL_STUDIO_DJANGO_DB": SQLITE})
    # Label Studio's settings with its doubled request log fixed (annotate/ls_site/cinectrl_ls_settings.py)
    env["DJANGO_SETTINGS_MODULE"] = LS_SETTINGS_MODULE
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(LS_SITE), os.environ.get("PYTHONPATH", "")) if p)
    return env


# ------------------------------------------------------------------------------------------- processes, ports

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
    """Whether a server could bind 127.0.0.1:port now (TIME_WAIT leftovers of our own last run do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie counts as dead, but a leader thread that has exited while the server's other threads still run
    # (and hold its socket) also reads "Z": alive while any of its threads is not a zombie.
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/stat") as fh:
                if fh.read().rsplit(") ", 1)[1][:1] != "Z":
                    return True
        except OSError:
            continue
    return False


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        r = httpx.get(url.rstrip("/") + "/health", timeout=timeout)
        return r.status_code == 200 and r.json().get("status") == "UP"
    except (httpx.HTTPError, ValueError):
        return False


@dataclass(frozen=True)
class Health:
    """What answered at a URL: `word` for `server status` ("UP", "DOWN", "NOT LABEL STUDIO"), `problem` the
    one-line error to show when it is not UP."""
    word: str
    problem: ServerError | None = None


def probe(conn: Connection, timeout: float = 3.0) -> Health:
    """GET /health, telling apart nothing listening (or a TLS/scheme mismatch) from a host that answered but is
    not Label Studio (naming what answered: status, content type, Server header)."""
    try:
        r = shared_http().get(conn.url + "/health", timeout=timeout)
    except httpx.HTTPError as exc:
        return Health("DOWN", unreachable(conn, exc))
    try:
        if r.status_code == 200 and r.json().get("status") == "UP":
            return Health("UP")
    except (ValueError, AttributeError):
        pass
    kind = r.headers.get("content-type", "no content type").split(";")[0]
    who = f", server {r.headers['server']!r}" if r.headers.get("server") else ""
    return Health("NOT LABEL STUDIO", ServerError(
        f"{conn.url} answered, but not as Label Studio (GET /health gave {r.status_code} {kind}{who}): another "
        "program has that address, or the URL is wrong: check scheme, host, port (and the path if Label Studio "
        "is served under one)"))


def _state_file(data_dir: Path) -> Path:
    return data_dir / "server.json"


def read_state(data_dir: Path) -> dict[str, Any] | None:
    """{"url", "port", "database", "pid" (None when stopped), "started_at"}; port and database outlive the
    process. 0600: the database URL may hold its password."""
    path = _state_file(data_dir)
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    if "port" not in state and state.get("url"):
        state["port"] = urlsplit(state["url"]).port
    return state


def _write_state(data_dir: Path, state: dict[str, Any]) -> None:
    _write_private(_state_file(data_dir), json.dumps(state))


@contextlib.contextmanager
def _start_lock(data_dir: Path, timeout: float) -> Iterator[None]:
    """One `server start` at a time per data dir: a second one waits, then finds the first one's server."""
    make_private(data_dir)
    fd = os.open(data_dir / "server.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() > deadline:
                    raise ServerError(f"another `cinectrl review server start` for {data_dir.parent} has held its "
                                      f"lock for {timeout:.0f} s: wait for it, or stop it and retry") from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def start(catalog_path: Path, *, port: int | None = None, database: str | None = None,
          boot_timeout: float = 180.0, venv: Path | None = None, data_dir: Path | None = None) -> Connection:
    """Start (or reuse the running) server for this catalog; returns once /health says UP.

    The port is the one asked for, else the one this catalog's server used last, else a free one. The database
    likewise: `database` ("sqlite" or a postgresql:// URL), else the one used last, else SQLite in the data dir."""
    data_dir = data_dir or data_dir_for(catalog_path)
    asked = parse_database(database) if database is not None else None   # a bad URL fails before anything runs
    with _start_lock(data_dir, timeout=boot_timeout + 60):
        state = read_state(data_dir) or {}
        creds = credentials(data_dir)
        remembered = state.get("database")
        db = asked if database is not None else parse_database(remembered)
        if _pid_alive(state.get("pid")) and healthy(state["url"]):
            if port and port != state.get("port"):
                raise ServerError(f"the server for this catalog already runs on port {state['port']}: stop it "
                                  f"(`cinectrl review server stop`) before starting it on port {port}")
            if database is not None and db != parse_database(remembered):
                raise ServerError(f"the server for this catalog already runs on {database_label(remembered)}: stop "
                                  f"it (`cinectrl review server stop`) before starting it on {db or SQLITE}")
            return Connection(state["url"], creds["token"], state["pid"])
        if _pid_alive(state.get("pid")):
            _terminate(int(state["pid"]))   # ours, but not answering: a stuck boot
        if db:
            _check_postgres_reachable(db)
        exe = ensure_venv(venv)
        port = port or state.get("port") or _free_port()
        if not port_free(port):
            raise ServerError(f"port {port} on 127.0.0.1 is in use by another program: choose another with "
                              f"`cinectrl review server start --port N`")
        url = f"http://127.0.0.1:{port}"
        env = _server_env(catalog_path, data_dir, creds, db)
        record = {"url": url, "port": port, "database": db.url() if db else SQLITE}
        log_path = data_dir / "server.log"
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        log_start = os.fstat(log_fd).st_size
        try:
            proc = subprocess.Popen([str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1",
                                     "--port", str(port)], env=env, cwd=str(data_dir), stdout=log_fd,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                    umask=0o077)
        finally:
            os.close(log_fd)
        _write_state(data_dir, {**record, "pid": proc.pid, "started_at": time.time()})
        deadline = time.monotonic() + boot_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                _write_state(data_dir, {**record, "pid": None})
                raise ServerError(f"Label Studio exited with code {proc.returncode} while starting"
                                  f"{_last_error(log_path, log_start, db)}; see {log_path}")
            if healthy(url):
                make_private(data_dir)   # files the first boot created before its umask applied to them
                return Connection(url, creds["token"], proc.pid)
            time.sleep(0.5)
        stop(catalog_path, data_dir=data_dir)
        raise ServerError(f"Label Studio did not answer {url}/health within {boot_timeout:.0f} s; "
                          f"see {log_path}")


def _last_error(log_path: Path, offset: int, db: Database | None) -> str:
    """The exception line this boot's log ends with (e.g. psycopg's 'password authentication failed'), password
    masked, as `: <line>`; empty when there is none."""
    try:
        with open(log_path, "rb") as fh:
            fh.seek(offset)
            lines = [ln.strip() for ln in fh.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    errors = [ln for ln in lines if "Error" in ln.split(":", 1)[0] or "FATAL" in ln]
    if not errors:
        return ""
    line = errors[-1][:300]
    if db and db.password:
        line = line.replace(db.password, "***")
    return f" ({'on ' + str(db) + ': ' if db else ''}{line})"


def _group_alive(pid: int) -> bool:
    """Whether any process of the server's group (the leader or the child holding the socket) is left."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)   # reap the leader if it is our child
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _pid_alive(pid) or any(_pid_alive(int(p)) for p in _group_members(pid))


def _group_members(pgid: int) -> list[str]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                members.append(entry.name)
    return members


def _terminate(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM to the server's own process group, SIGKILL after `timeout`; returns once the group is gone (the
    listening socket with it)."""
    try:
        os.killpg(pid, signal.SIGTERM)  # own session: the dev server's reloader children go too
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while _group_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _group_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while _group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)


def stop(catalog_path: Path, *, data_dir: Path | None = None, timeout: float = 20.0) -> bool:
    """Stop the server this catalog started (by its recorded PID); its port is kept for the next start.
    False when none was running."""
    data_dir = data_dir or data_dir_for(catalog_path)
    state = read_state(data_dir)
    if not state or not state.get("pid"):
        return False
    pid = int(state["pid"])
    was_alive = _pid_alive(pid)
    if was_alive:
        _terminate(pid, timeout)
    _write_state(data_dir, {**state, "pid": None})
    return was_alive


# ------------------------------------------------------------------------------------------- connecting

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
    CINECTRL_LS_CONFIG, `{"url": ..., "token": ...}`, mode 0600; the environment wins), else ours.
    Not checked yet: `identify` does that."""
    remote = _remote_config()
    url = os.environ.get("CINECTRL_LS_URL") or remote.get("url")
    if url:
        token = os.environ.get("CINECTRL_LS_TOKEN") or remote.get("token")
        if not token:
            raise ServerError("CINECTRL_LS_URL is set but CINECTRL_LS_TOKEN is not: export the server's API token "
                              "or put \"token\" in the CINECTRL_LS_CONFIG file")
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ServerError(f"CINECTRL_LS_URL={url!r} is not an http(s) URL: expected e.g. http://host:8080")
        return Connection(canonical_url(url), token)
    data_dir = data_dir or data_dir_for(catalog_path)
    state = read_state(data_dir)
    if not state or not _pid_alive(state.get("pid")):
        raise ServerError(f"no Label Studio server running for {catalog_path}: run `cinectrl review server start "
                          f"--catalog {catalog_path}` or set CINECTRL_LS_URL and CINECTRL_LS_TOKEN")
    return Connection(state["url"], credentials(data_dir)["token"], state["pid"])


def is_personal_access_token(token: str) -> bool:
    return token.startswith("eyJ") and token.count(".") == 2


_ACCESS: dict[str, tuple[str, float]] = {}   # sha256(PAT) -> (access token, when to refresh)


def auth_headers(conn: Connection) -> dict[str, str]:
    """A legacy token goes as `Token`; a personal access token (a JWT, the only kind a server >= 1.17 issues by
    default) is exchanged for a short-lived access token first, as the SDK does, and reused for a minute."""
    if not is_personal_access_token(conn.token):
        return {"Authorization": f"Token {conn.token}"}
    cache_key = hashlib.sha256(f"{conn.url}|{conn.token}".encode()).hexdigest()
    access, until = _ACCESS.get(cache_key, ("", 0.0))
    if time.monotonic() > until:
        r = request(conn, "POST", "/api/token/refresh/", auth=False, json={"refresh": conn.token})
        access = r.json()["access"]
        _ACCESS[cache_key] = (access, time.monotonic() + 60)
    return {"Authorization": f"Bearer {access}"}


_HTTP: httpx.Client | None = None


def shared_http() -> httpx.Client:
    """One client per process: building one costs ~75 ms (its TLS context), and it keeps connections alive."""
    global _HTTP
    if _HTTP is None:
        _HTTP = httpx.Client(timeout=HTTP_TIMEOUT)
    return _HTTP


def request(conn: Connection, method: str, path: str, *, auth: bool = True,
            headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
    """One API call with every failure turned into a one-line ServerError (never the token, never a web page)."""
    all_headers = {**(auth_headers(conn) if auth else {}), **(headers or {})}
    try:
        r = shared_http().request(method, conn.url + path, headers=all_headers, timeout=kw.pop("timeout", HTTP_TIMEOUT),
                            **kw)
    except httpx.HTTPError as exc:
        raise unreachable(conn, exc) from None
    if r.status_code >= 400:
        raise http_error(conn, r.status_code, r.headers.get("content-type", ""), r.text, path)
    return r


def unreachable(conn: Connection, exc: Exception) -> ServerError:
    text = str(exc)
    if conn.url.startswith("https://") and ("WRONG_VERSION_NUMBER" in text or "record layer failure" in text
                                            or "wrong version number" in text):
        return ServerError(f"{conn.url} answered, but not over TLS: it speaks plain http, so https:// cannot work; "
                           f"use http://{conn.url[len('https://'):]} (or serve Label Studio behind a TLS proxy)")
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return ServerError(f"{conn.url} answered over TLS with a certificate this machine does not trust "
                           f"({text.rsplit(':', 1)[-1].strip()[:120]}): point SSL_CERT_FILE at the lab's CA bundle")
    return ServerError(f"cannot reach Label Studio at {conn.url} ({type(exc).__name__}); is it running? "
                       "`cinectrl review server status`; rerun the command once it is up (nothing is duplicated)")


def http_error(conn: Connection, status: int, content_type: str, body: str, what: str = "") -> ServerError:
    if status == 401 or (what.startswith("/api/token/refresh") and status == 400):
        return ServerError(f"Label Studio at {conn.url} refused the API token (401): check CINECTRL_LS_TOKEN "
                           "or the credentials file beside the catalog")
    if "json" not in content_type:
        return ServerError(f"{conn.url} answered {status} with a web page, not Label Studio's API"
                           f"{f' (for {what})' if what else ''}: check the URL (scheme, host, port; no path after "
                           "the port unless Label Studio is served under one)")
    if status == 403:
        return ServerError(f"Label Studio at {conn.url} refused this account (403){f' for {what}' if what else ''}: "
                           "the token's account lacks the right (removed from the organization, or not its owner); "
                           "use the admin's token")
    try:
        detail = json.loads(body)
        detail = detail.get("validation_errors") or detail.get("detail") or detail
    except ValueError:
        detail = body
    return ServerError(f"Label Studio at {conn.url} answered {status}{f' for {what}' if what else ''}: "
                       f"{str(detail)[:300]}")


def identify(conn: Connection) -> Connection:
    """Check that `conn` is a Label Studio server that accepts the token; return it with the instance key
    (organization id + creation time, hashed). One request when the account belongs to one organization."""
    try:
        orgs = request(conn, "GET", "/api/organizations/").json()
    except ServerError:
        _check_is_label_studio(conn)   # a wrong URL or path explains itself better than its 404 page
        raise
    if len(orgs) != 1:
        active = whoami(conn).get("active_organization")
        orgs = [o for o in orgs if o.get("id") == active]
    if not orgs:
        raise ServerError(f"the token's account belongs to no organization on {conn.url} (removed from it?): "
                          "use the admin's token")
    org = orgs[0]
    key = "ls-" + hashlib.sha256(f"{org['id']}|{org.get('created_at')}".encode()).hexdigest()[:16]
    return replace(conn, key=key)


def whoami(conn: Connection) -> dict[str, Any]:
    """The token's account: id, email, active organization."""
    return request(conn, "GET", "/api/current-user/whoami").json()


def _check_is_label_studio(conn: Connection) -> None:
    try:
        r = shared_http().get(conn.url + "/api/version")
    except httpx.HTTPError as exc:
        raise unreachable(conn, exc) from None
    try:
        version = r.json() if r.status_code == 200 else None
    except ValueError:
        version = None
    if not isinstance(version, dict) or "release" not in version:
        raise ServerError(f"{conn.url} does not answer like a Label Studio server (GET /api/version gave "
                          f"{r.status_code} {r.headers.get('content-type', '?').split(';')[0]}): check the URL "
                          "(scheme, host, port; no path after the port unless Label Studio is served under one)")


def server_version(conn: Connection) -> str:
    return str(request(conn, "GET", "/api/version", auth=False).json().get("release", "?"))

"""One real Label Studio server per test session (its own venv, created here on a fresh machine: ~70 s; first
boot ~35 s), rooted at a temp folder in which every test makes its own catalog + media; stopped by PID.

The server runs with an audit hook (netaudit/sitecustomize.py) that logs any attempt to reach another host.
Reviewer accounts (LS accounts are server-wide) are made once per session; each test registers the ones it
needs in its own catalog. Tests marked `both_databases` run against a second server on PostgreSQL too (a
throwaway cluster from the distribution's package, booted only when such a test runs). Set CINECTRL_TEST_LS_ROOT to a folder to keep (and reuse) the server between runs
while developing; it is then left running.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from annotate import accounts, server
from capture.catalog import Catalog

_counter = itertools.count()
NETAUDIT = Path(__file__).resolve().parent / "netaudit"
PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
PASSWORD = "pw-for-{}"


def clip_frames(shade: int, frames: int = 12, size: int = 64) -> list[np.ndarray]:
    """A textured scene (bars and a moving edge): a shift, a flicker or a swap shows in it."""
    out = []
    y, x = np.mgrid[0:size, 0:size]
    for i in range(frames):
        img = np.full((size, size, 3), shade, np.uint8)
        img[(x // 8) % 2 == 0] = min(255, shade + 60)
        img[:, (i * 4) % size] = 255
        img[y > size * 3 // 4] = (shade // 2, shade // 3, 200)
        out.append(img)
    return out


def write_clip(path: Path, shade: int, frames: int = 12, fps: int = 24, size: int = 64) -> None:
    """A tiny H.264 yuv420p CFR MP4 (what the review UI needs; see docs/review.md)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as out:
        s = out.add_stream("libx264", rate=Fraction(fps))
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        s.options = {"crf": "18", "preset": "ultrafast"}
        for img in clip_frames(shade, frames, size):
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)


def _frame_row(cat: Catalog, sid: int, combo: str, ordinal: int, requested: dict, readback: dict, exif: dict) -> None:
    """One captured frame of a clip (point + asset + settings), as a capture session records it."""
    cat.add_points(sid, [{"ordinal": ordinal, "combination_key": combo, "frame_index": 0, "settings": requested}])
    point = cat.point_id(sid, ordinal)
    asset = cat.add_asset("", sha256=None, bytes=None, kind="still", session_id=sid, point_id=point,
                          stored_path=f"frames/{cat.path.stem}-{combo}-{ordinal}.jpg")
    cat.set_settings(asset, requested=requested, readback=readback, exif=exif)


def make_catalog(root: Path, n_pairs: int, *, name: str | None = None, clip_file: Path | None = None) -> Catalog:
    """A catalog in `root` with one session of `n_pairs` pairs (reference + other clip each) under media/, each
    clip with one captured frame carrying requested / read-back / EXIF settings. With `clip_file`, every clip
    row points to a copy of that one file made byte-distinct (fast, for benchmarks)."""
    name = name or f"cat{os.getpid()}-{next(_counter)}"
    cat = Catalog(root / f"{name}.db", durable=False)
    media = root / "media" / name
    sid = cat.create_session(name, mode="passes")
    ref_path = media / "ref.mp4"
    write_clip(ref_path, 60)
    ref_settings = {"aperture": "f/8", "shutter": "1/50", "iso": "100"}
    with cat.transaction():
        ref_asset = cat.add_asset(ref_path, sha256=None, bytes=ref_path.stat().st_size, kind="clip", frames=12,
                                  fps=24)
        ref = cat.add_clip(sid, "c000", asset_id=ref_asset, frames=12, fps=24, settings=ref_settings)
        _frame_row(cat, sid, "c000", 0, ref_settings, ref_settings, {**ref_settings, "shutter": "1/60"})
        for i in range(n_pairs):
            p = media / f"other{i}.mp4"
            if clip_file is None:
                write_clip(p, 100 + (i * 37) % 150)
            elif not p.exists():   # the same clip, made distinct by a trailing MP4 'free' box (players skip it)
                tag = f"cinectrl-bench-{i}".encode()
                p.write_bytes(clip_file.read_bytes() + (8 + len(tag)).to_bytes(4, "big") + b"free" + tag)
            a = cat.add_asset(p, sha256=None, bytes=p.stat().st_size, kind="clip", frames=12, fps=24)
            settings = {"aperture": "f/2.8", "shutter": "1/50", "iso": str(100 + i)}
            c = cat.add_clip(sid, f"c{i + 1:03d}", asset_id=a, frames=12, fps=24, settings=settings)
            _frame_row(cat, sid, f"c{i + 1:03d}", i + 1, settings, settings, settings)
            cat.add_pair(sid, ref, c, deltas={"aperture_stops": -3.0},
                         qc={"alignment_px": 0.2, "clipped_fraction": 0.0, "sharpness_ratio": 0.9, "frames": 12,
                             "flags": [], "passed": i % 3 != 0})
    return cat


@dataclass
class PgCluster:
    """A PostgreSQL cluster made with the package's initdb/pg_ctl in a temp dir: password (SCRAM) logins over TCP
    on 127.0.0.1 only, its socket in the same dir. initdb refuses to run as root (CI runs tests as root), so then
    everything runs as the package's `postgres` user via runuser."""
    root: Path
    bin: Path
    port: int
    user: str = "cinectrl"
    password: str = "pg-pass-for-tests"
    as_user: tuple[str, ...] = ()

    @classmethod
    def start(cls, root: Path) -> "PgCluster":
        if not PG_BIN:
            pytest.fail("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run "
                        "scripts/install-system-deps.sh (Debian package `postgresql`)")
        as_user: tuple[str, ...] = ()
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail("running as root and no `postgres` user to run initdb as: install the Debian package "
                            "`postgresql` (scripts/install-system-deps.sh)")
            os.chown(root, owner.pw_uid, owner.pw_gid)
            as_user = ("runuser", "-u", "postgres", "--")
        cluster = cls(root, PG_BIN[-1].parent, server._free_port(), as_user=as_user)
        pwfile = root / "pw"
        pwfile.write_text(cluster.password + "\n")
        if as_user:
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        cluster._run("initdb", "-D", str(root / "data"), "-U", cluster.user, "--pwfile", str(pwfile),
                     "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--no-sync")
        pwfile.unlink()
        cluster._run("pg_ctl", "-D", str(root / "data"), "-l", str(root / "postgres.log"), "-w", "-t", "60",
                     "-o", f"-c listen_addresses=127.0.0.1 -p {cluster.port} -k {root} -c fsync=off", "start")
        return cluster

    def _run(self, tool: str, *args: str) -> str:
        r = subprocess.run([*self.as_user, str(self.bin / tool), *args], capture_output=True, text=True,
                           timeout=120, env={**os.environ, "PGPASSWORD": self.password}, cwd=self.root)
        if r.returncode:
            raise AssertionError(f"{tool} failed ({r.returncode}): {r.stderr[-800:]}")
        return r.stdout

    def create_database(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name)
        return name

    def url(self, name: str) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{name}"

    def sql(self, database: str, query: str) -> str:
        return self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", database,
                         "-Atc", query).strip()

    def stop(self) -> None:
        """SIGINT (PostgreSQL's fast shutdown) to the postmaster's PID from its pid file; wait until it is gone."""
        pid_file = self.root / "data" / "postmaster.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text().split()[0])
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)


def login(url: str, email: str, password: str) -> httpx.Client:
    """A browser-like session logged in through Label Studio's form (302 on success)."""
    c = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
    c.get("/user/login/")
    r = c.post("/user/login/", data={"email": email, "password": password,
                                     "csrfmiddlewaretoken": c.cookies["csrftoken"]},
               headers={"Referer": url + "/user/login/"})
    if r.status_code != 302:
        c.close()
        raise AssertionError(f"login as {email} failed ({r.status_code})")
    return c


def login_token(url: str, email: str, password: str) -> str:
    """A user's own legacy API token, got the way a person would: log in, then read it from the account."""
    c = login(url, email, password)
    try:
        r = c.get("/api/current-user/token")
        r.raise_for_status()
        return r.json()["token"]
    finally:
        c.close()


@pytest.fixture(scope="session")
def ls_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keep = os.environ.get("CINECTRL_TEST_LS_ROOT")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        return Path(keep)
    return tmp_path_factory.mktemp("review")


@pytest.fixture(scope="session")
def netaudit_log(ls_root: Path) -> Path:
    return ls_root / "netaudit.log"


def _start_session_server(anchor: Path, netaudit_log: Path, **kw) -> server.Connection:
    server.ensure_venv()   # installing the server (pip reaching the package index) is not the server's traffic
    env = {"PYTHONPATH": str(NETAUDIT), "CINECTRL_NETAUDIT_LOG": str(netaudit_log)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)   # read by server.start when it builds the server's environment
    try:
        return server.start(anchor, boot_timeout=400, **kw)
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture(scope="session")
def ls_server_sqlite(ls_root: Path, netaudit_log: Path):
    anchor = ls_root / "anchor.db"
    conn = _start_session_server(anchor, netaudit_log)
    try:
        yield conn
    finally:
        if not os.environ.get("CINECTRL_TEST_LS_ROOT"):
            server.stop(anchor)


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL cluster from the distribution's package, on 127.0.0.1 only, stopped by PID. Its
    folder is not under pytest's (0700 root-owned) temp root: the `postgres` user must reach it."""
    root = Path(tempfile.mkdtemp(prefix="cinectrl-pg-"))
    try:
        cluster = PgCluster.start(root)
        try:
            yield cluster
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def ls_server_postgresql(ls_root: Path, netaudit_log: Path, pg_cluster: "PgCluster"):
    """The same managed server on PostgreSQL (`server start --database`, a fresh database), for the catalogs in
    ls_root/pg (its media root; `server.connect` finds it from any catalog there)."""
    anchor = pg_root(ls_root) / "anchor.db"
    conn = _start_session_server(anchor, netaudit_log,
                                 database=pg_cluster.url(pg_cluster.create_database(PG_SESSION_DB)))
    try:
        yield conn
    finally:
        server.stop(anchor)


PG_SESSION_DB = "ls_session"


def pg_root(ls_root: Path) -> Path:
    """Where the PostgreSQL server's catalogs live (its data dir and local-files root)."""
    (ls_root / "pg").mkdir(exist_ok=True)
    return ls_root / "pg"


@pytest.fixture()
def ls_database() -> str:
    """sqlite, unless a test marked `both_databases` is run for postgresql too (pytest_generate_tests)."""
    return "sqlite"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("both_databases"):
        metafunc.parametrize("ls_database", ["sqlite", "postgresql"])


@pytest.fixture()
def ls_server(request: pytest.FixtureRequest, ls_database: str) -> server.Connection:
    """The session's server on the database this test runs against (booted once per database)."""
    return request.getfixturevalue(f"ls_server_{ls_database}")


@dataclass(frozen=True)
class Person:
    email: str
    password: str
    user_id: int
    token: str


@pytest.fixture(scope="session")
def people_sqlite(ls_server_sqlite, ls_root) -> dict[str, Person]:
    return _make_people(ls_server_sqlite, ls_root / "accounts.db")


@pytest.fixture(scope="session")
def people_postgresql(ls_server_postgresql, ls_root) -> dict[str, Person]:
    return _make_people(ls_server_postgresql, ls_root / "accounts-pg.db")


@pytest.fixture()
def people(request: pytest.FixtureRequest, ls_database: str) -> dict[str, Person]:
    return request.getfixturevalue(f"people_{ls_database}")


def _make_people(ls_server: server.Connection, accounts_db: Path) -> dict[str, Person]:
    """Reviewer accounts on the server: alice, bob, erin (annotators), carol, dave (adjudicators), eve (never
    registered in any catalog). Created through cinectrl's own account code on an anchor catalog."""
    cat = Catalog(accounts_db, durable=False)
    conn = server.identify(ls_server)
    out = {}
    try:
        for name, role in (("alice", "annotator"), ("bob", "annotator"), ("erin", "annotator"),
                           ("carol", "adjudicator"), ("dave", "adjudicator"), ("eve", "annotator")):
            email = f"{name}@lab.test"
            res = accounts.add(cat, conn, email, role=role, password=PASSWORD.format(name))
            out[name] = Person(email, PASSWORD.format(name), res.user_id,
                               login_token(conn.url, email, PASSWORD.format(name)))
    finally:
        cat.close()
    return out


@pytest.fixture()
def catalog_factory(ls_root: Path, ls_database: str):
    """Catalogs in the folder of the server the test runs against (ls_root, or ls_root/pg for PostgreSQL)."""
    made: list[Catalog] = []
    root = pg_root(ls_root) if ls_database == "postgresql" else ls_root

    def make(n_pairs: int = 3, **kw) -> Catalog:
        made.append(make_catalog(root, n_pairs, **kw))
        return made[-1]

    yield make
    for c in made:
        c.close()

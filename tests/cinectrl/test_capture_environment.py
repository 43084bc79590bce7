"""The environment, fuzzed: `capture plan|run|status` against missing folders, junk and foreign catalogs,
read-only lab and session folders, unreadable plans -- and a full disk. Each ends in a clear one-line error
(or works), never a traceback, and leaves the catalog consistent: no session or point left `running`, every
catalogued frame on disk with its hash.

Permissions are real: when the tests run as root (which ignores file modes) each command runs with the
effective uid of `nobody`. The full disk is a real tmpfs of a few hundred kB in a private mount namespace
(`unshare -m`), skipped only where the kernel refuses one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from typer.testing import CliRunner

from cinectrl.main import app

pytestmark = pytest.mark.timeout(300)
REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()
NOBODY = 65534

PLAN = """[session]
scene = "environment"
operator = "fuzz"

[rig]
camera = "sim"
slider = "none"
speed = 1000
camera_options = {{ width = 64, height = 48 }}

[axes]
aperture = ["f/2.8", "f/4"]
iso = ["{iso}"]
"""
CATALOGS = ["new", "nested-missing", "junk", "empty", "text", "directory", "foreign-sqlite", "existing",
            "readonly-lab", "readonly-sessions"]
PLANS = ["ok", "missing", "directory", "binary"]
COMMANDS = ["plan", "plan-offline", "run", "status", "status-json"]


@contextlib.contextmanager
def unprivileged():
    """Run the body with the effective uid of nobody when we are root (root ignores file modes)."""
    if os.geteuid() != 0:
        yield
        return
    groups = os.getgroups()
    os.setgroups([])
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(groups)


def _open_tree(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        p.chmod(0o777 if p.is_dir() else 0o666)


def _read_only_tree(path: Path) -> None:
    for p in sorted([path, *path.rglob("*")], reverse=True):
        p.chmod(0o555 if p.is_dir() else 0o444)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A lab with one complete session of the plan (iso 100)."""
    root = tmp_path_factory.mktemp("template")
    plan = root / "plan.toml"
    plan.write_text(PLAN.format(iso=100))
    result = runner.invoke(app, ["capture", "run", str(plan), "--catalog", str(root / "lab" / "catalog.db"),
                                 "--quiet", "--init"])
    assert result.exit_code == 0, result.output
    return root / "lab"


def make_environment(base: Path, template: Path, catalog_kind: str, plan_kind: str) -> tuple[Path, Path]:
    lab = base / "lab"
    catalog = lab / "catalog.db"
    if catalog_kind in ("existing", "readonly-lab", "readonly-sessions"):
        shutil.copytree(template, lab)
    elif catalog_kind == "nested-missing":
        catalog = base / "no" / "such" / "folder" / "catalog.db"
    else:
        lab.mkdir()
        if catalog_kind == "junk":
            catalog.write_bytes(os.urandom(3000))
        elif catalog_kind == "empty":
            catalog.write_bytes(b"")
        elif catalog_kind == "text":
            catalog.write_text("this is a lab notebook, not a database\n" * 50)
        elif catalog_kind == "directory":
            catalog.mkdir()
        elif catalog_kind == "foreign-sqlite":
            db = sqlite3.connect(catalog)
            db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
            db.execute("INSERT INTO customers (name) VALUES ('ana')")
            db.commit()
            db.close()
    plan = base / "plan.toml"
    if plan_kind == "ok":
        plan.write_text(PLAN.format(iso=400))              # another plan than the template's session
    elif plan_kind == "directory":
        plan.mkdir()
    elif plan_kind == "binary":
        plan.write_bytes(b"\xff\xfe\x00\x00[session]\x9c")
    _open_tree(base)
    if catalog_kind == "readonly-lab":
        _read_only_tree(lab)
    elif catalog_kind == "readonly-sessions":
        _read_only_tree(lab / "sessions")
    return catalog, plan


def invoke(command: str, plan: Path, catalog: Path):
    args = {"plan": ["capture", "plan", str(plan)], "plan-offline": ["capture", "plan", str(plan), "--offline"],
            "run": ["capture", "run", str(plan), "--quiet"], "status": ["capture", "status"],
            "status-json": ["capture", "status", "--json"]}[command]
    with unprivileged():
        return runner.invoke(app, [*args, "--catalog", str(catalog)])


def consistent(catalog: Path) -> None:
    """No session or point left running; every catalogued frame on disk with the hash the catalog holds."""
    if not catalog.is_file():
        return
    try:
        db = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError:
        return                                           # junk stays junk: nothing of ours in it
    try:
        if "sessions" not in tables:
            return
        assert db.execute("SELECT count(*) FROM sessions WHERE status = 'running'").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM points WHERE status = 'running'").fetchone()[0] == 0
        for path, sha in db.execute("SELECT path, sha256 FROM assets WHERE point_id IS NOT NULL"):
            assert hashlib.sha256((catalog.parent / path).read_bytes()).hexdigest() == sha, path
    finally:
        db.close()


def check(result, catalog: Path) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1, 3), (result.exit_code, result.output)
    if result.exit_code:
        errors = [line for line in result.output.splitlines() if line.startswith(("error:", "paused:",
                                                                                   "suspended:"))]
        assert len(errors) == 1, result.output
    consistent(catalog)


def _base() -> Path:
    base = Path(tempfile.mkdtemp(prefix="cinectrl-env-", dir="/tmp"))
    base.chmod(0o777)
    return base


def _remove(base: Path) -> None:
    for p in [base, *base.rglob("*")]:
        with contextlib.suppress(OSError):
            p.chmod(stat.S_IRWXU | (p.stat().st_mode & 0o777))
    shutil.rmtree(base, ignore_errors=True)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.sampled_from(CATALOGS), st.sampled_from(PLANS), st.sampled_from(COMMANDS))
def test_any_environment_gives_one_line_and_a_consistent_catalog(template, catalog_kind, plan_kind, command):
    base = _base()
    try:
        catalog, plan = make_environment(base, template, catalog_kind, plan_kind)
        check(invoke(command, plan, catalog), catalog)
    finally:
        _remove(base)


@pytest.mark.parametrize("catalog_kind, command, message", [
    ("readonly-lab", "run", "cannot write"),
    ("readonly-sessions", "run", "cannot write"),
    ("junk", "run", "not a cinectrl catalog"),
    ("junk", "status", "not a cinectrl catalog"),
    ("directory", "plan", "is a folder"),
    ("text", "status-json", "not a cinectrl catalog"),
])
def test_named_environments(template, catalog_kind, command, message):
    base = _base()
    try:
        catalog, plan = make_environment(base, template, catalog_kind, "ok")
        before = _sessions(catalog)
        result = invoke(command, plan, catalog)
        check(result, catalog)
        assert result.exit_code == 1 and message in " ".join(result.output.split()), result.output
        assert _sessions(catalog) == before                  # a refused start adds no session
    finally:
        _remove(base)


def _sessions(catalog: Path) -> list:
    try:
        db = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
        try:
            return db.execute("SELECT id, status FROM sessions ORDER BY id").fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return []


FULL_DISK = r"""
set -e
mount -t tmpfs -o size=${SIZE1} cinectrl-full "$LAB"
set +e
run() {  # run NAME: one capture run with no reserve and no waiting, its exit status and output kept
    "$PY" -m cinectrl.main capture run "$PLAN" --catalog "$LAB/catalog.db" --quiet --disk-wait 0 \
        --disk-reserve-mb 0 > "$OUT/$1.out" 2> "$OUT/$1.err"
    echo $? > "$OUT/$1.rc"
    "$PY" - "$LAB/catalog.db" > "$OUT/$1.check" 2>&1 <<'CHECK'
import hashlib, sqlite3, sys
from pathlib import Path
catalog = Path(sys.argv[1])
db = sqlite3.connect(catalog)
print([(r[0],) for r in db.execute("SELECT status FROM sessions")] if db.execute(
    "SELECT count(*) FROM sqlite_master WHERE name = 'sessions'").fetchone()[0] else "no sessions table")
tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
print(db.execute("SELECT status, count(*) FROM points GROUP BY status ORDER BY status").fetchall()
      if "points" in tables else [])
bad = [p for p, s in (db.execute("SELECT path, sha256 FROM assets WHERE point_id IS NOT NULL") if "assets" in tables
                      else []) if hashlib.sha256((catalog.parent / p).read_bytes()).hexdigest() != s]
print("bad", bad)
CHECK
}
run full               # the first frame does not fit: ENOSPC mid-write
mount -o remount,size=${SIZE2} "$LAB"
run low                # a few frames fit, then the disk-low suspender stops it
mount -o remount,size=64m "$LAB"
run roomy              # space is back: the rerun resumes and finishes
"""


def _step(out: Path, name: str) -> tuple[str, str, str]:
    return (out / f"{name}.rc").read_text().strip(), (out / f"{name}.err").read_text(), \
        (out / f"{name}.check").read_text()


def test_a_full_disk_stops_cleanly_and_a_rerun_resumes(tmp_path):
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("this kernel or container gives no private mount namespace (unshare -m), so no tmpfs to fill")
    lab, out = tmp_path / "lab", tmp_path / "out"
    lab.mkdir()
    out.mkdir()
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.format(iso=100).replace('["f/2.8", "f/4"]', '["f/2.8", "f/4", "f/5.6", "f/8"]')
                    .replace("width = 64, height = 48", "width = 640, height = 480")
                    .replace("[axes]", "[order]\nrepeat = 3\n\n[axes]"))
    env = dict(os.environ, LAB=str(lab), OUT=str(out), PLAN=str(plan), PY=sys.executable, PYTHONPATH=str(REPO),
               SIZE1="350k", SIZE2="700k")
    done = subprocess.run(["unshare", "-m", "sh", "-c", FULL_DISK], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=240)
    if "mount" in done.stderr and not (out / "full.rc").exists():
        pytest.skip(f"tmpfs cannot be mounted here: {done.stderr.strip()[:200]}")
    for name in ("full", "low"):
        rc, err, state = _step(out, name)
        assert rc in ("1", "3") and "Traceback" not in err, (name, rc, err)
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith(("error:", "suspended:")), (name, err)
        points, bad = state.splitlines()[1:3]
        assert "'running'" not in points and bad == "bad []", (name, state)     # nothing left half-done
        # a disk so full that SQLite cannot append leaves the session row as it was ('running'); then its
        # owner is gone and `capture status` calls it interrupted -- the message said the catalog could not
        if "'running'" in state.splitlines()[0]:
            assert "the catalog could not record it" in err, (name, err)
    assert "disk" in _step(out, "full")[1] and "free space" in _step(out, "low")[1]
    rc, err, state = _step(out, "roomy")
    assert rc == "0", err
    assert "[('done',)]" in state and "[('done', 12)]" in state and "bad []" in state


@pytest.mark.parametrize("where", ["read-only folder", "under a file", "missing parents"])
def test_rig_capture_into_a_folder_it_cannot_use(where):
    base = _base()
    try:
        out = {"read-only folder": base / "ro", "under a file": base / "file" / "shots",
               "missing parents": base / "a" / "b" / "c"}[where]
        if where == "read-only folder":
            out.mkdir()
            out.chmod(0o555)
        elif where == "under a file":
            (base / "file").write_text("not a folder")
        with unprivileged():
            result = runner.invoke(app, ["rig", "capture", "--camera", "sim", "--out", str(out)])
        check(result, base / "no-catalog.db")
        if where == "missing parents":
            assert result.exit_code == 0 and (out / "capture.jpg").is_file()       # made, as asked
        else:
            assert result.exit_code == 1 and "error:" in result.output and str(out.parent) in result.output
    finally:
        _remove(base)

"""One real Label Studio server per test session (its own venv, created here on a fresh machine: ~70 s; first
boot ~35 s), rooted at a temp folder in which every test makes its own catalog + media; stopped by PID.

The server runs with an audit hook (netaudit/sitecustomize.py) that logs any attempt to reach another host.
Reviewer accounts (LS accounts are server-wide) are made once per session; each test registers the ones it
needs in its own catalog. Set CINECTRL_TEST_LS_ROOT to a folder to keep (and reuse) the server between runs
while developing; it is then left running.
"""

from __future__ import annotations

import itertools
import os
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


@pytest.fixture(scope="session")
def ls_server(ls_root: Path, netaudit_log: Path):
    anchor = ls_root / "anchor.db"
    server.ensure_venv()   # installing the server (pip reaching the package index) is not the server's traffic
    env = {"PYTHONPATH": str(NETAUDIT), "CINECTRL_NETAUDIT_LOG": str(netaudit_log)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)   # read by server.start when it builds the server's environment
    try:
        conn = server.start(anchor, boot_timeout=240)
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    try:
        yield conn
    finally:
        if not os.environ.get("CINECTRL_TEST_LS_ROOT"):
            server.stop(anchor)


@dataclass(frozen=True)
class Person:
    email: str
    password: str
    user_id: int
    token: str


@pytest.fixture(scope="session")
def people(ls_server, ls_root) -> dict[str, Person]:
    """Reviewer accounts on the server: alice, bob, erin (annotators), carol, dave (adjudicators), eve (never
    registered in any catalog). Created through cinectrl's own account code on an anchor catalog."""
    cat = Catalog(ls_root / "accounts.db", durable=False)
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
def catalog_factory(ls_root: Path):
    made: list[Catalog] = []

    def make(n_pairs: int = 3, **kw) -> Catalog:
        made.append(make_catalog(ls_root, n_pairs, **kw))
        return made[-1]

    yield make
    for c in made:
        c.close()

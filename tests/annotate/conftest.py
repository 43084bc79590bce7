"""One real Label Studio server per test session (its own venv, created here on a fresh machine: ~70 s; first
boot ~35 s), rooted at a temp folder in which every test makes its own catalog + media; stopped by PID."""

from __future__ import annotations

import itertools
import re
from fractions import Fraction
from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from annotate import server
from capture.catalog import Catalog

_counter = itertools.count()


def write_clip(path: Path, shade: int, frames: int = 12, fps: int = 24, size: int = 64) -> None:
    """A tiny H.264 yuv420p CFR MP4 (what the review UI needs; see docs/review.md)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as out:
        s = out.add_stream("libx264", rate=Fraction(fps))
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        s.options = {"crf": "30", "preset": "ultrafast"}
        for i in range(frames):
            img = np.full((size, size, 3), shade, np.uint8)
            img[:, (i * 4) % size] = 255
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)


def make_catalog(root: Path, n_pairs: int, *, name: str | None = None, clip_file: Path | None = None) -> Catalog:
    """A catalog in `root` with one session of `n_pairs` pairs (reference + other clip each) under media/.
    With `clip_file`, every clip row points to copies-by-name of that one file's bytes (fast, for benchmarks)."""
    name = name or f"cat{next(_counter)}"
    cat = Catalog(root / f"{name}.db", durable=False)
    media = root / "media" / name
    sid = cat.create_session(name, mode="passes")
    ref_path = media / "ref.mp4"
    write_clip(ref_path, 60)
    ref_asset = cat.add_asset(ref_path, sha256=None, bytes=ref_path.stat().st_size, kind="clip", frames=12, fps=24)
    ref = cat.add_clip(sid, "f2.8_1/50_iso100", asset_id=ref_asset, frames=12, fps=24,
                       settings={"aperture": "f/2.8", "shutter": "1/50", "iso": 100})
    with cat.transaction():
        for i in range(n_pairs):
            p = media / f"other{i}.mp4"
            if clip_file is None:
                write_clip(p, 100 + (i * 37) % 150)
            elif not p.exists():
                p.hardlink_to(clip_file)
            a = cat.add_asset(p, sha256=None, bytes=p.stat().st_size, kind="clip", frames=12, fps=24)
            c = cat.add_clip(sid, f"f8_1/50_iso{100 + i}", asset_id=a, frames=12, fps=24,
                             settings={"aperture": "f/8", "shutter": "1/50", "iso": 100 + i})
            cat.add_pair(sid, ref, c, deltas={"aperture_stops": 3.0}, qc={"passed": i % 3 != 0, "score": 0.5})
    return cat


def login_token(url: str, email: str, password: str) -> str:
    """A user's own legacy API token, got the way a person would: log in, then read it from the account."""
    with httpx.Client(base_url=url, follow_redirects=False, timeout=30) as c:
        c.get("/user/login/")
        r = c.post("/user/login/", data={"email": email, "password": password,
                                         "csrfmiddlewaretoken": c.cookies["csrftoken"]},
                   headers={"Referer": url + "/user/login/"})
        assert r.status_code == 302, f"login as {email} failed ({r.status_code})"
        r = c.get("/api/current-user/token")
        r.raise_for_status()
        return r.json()["token"]


@pytest.fixture(scope="session")
def ls_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("review")


@pytest.fixture(scope="session")
def ls_server(ls_root: Path):
    anchor = ls_root / "anchor.db"
    conn = server.start(anchor, boot_timeout=240)
    try:
        yield conn
    finally:
        server.stop(anchor)


@pytest.fixture()
def catalog_factory(ls_root: Path):
    made: list[Catalog] = []

    def make(n_pairs: int = 3, **kw) -> Catalog:
        made.append(make_catalog(ls_root, n_pairs, **kw))
        return made[-1]

    yield make
    for c in made:
        c.close()


TOKEN_RE = re.compile(r"[0-9a-f]{40}")


@pytest.fixture(scope="session")
def user_token():
    return login_token

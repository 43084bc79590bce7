"""The HTTP service end to end through FastAPI's TestClient (and a real uvicorn on 127.0.0.1 for the load test).

Until the CineCtrl pipeline lands (train/pipeline.py), the model is `StepEditor` below: a multi-step editor with
the pipeline's contract (progress per step, cancel between steps) applying an exact exposure/colour edit.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from train.editor import Cancelled, EditPlan
from train.jobs import JobQueue
from train.serve import ServeConfig, bind_socket, create_app
from rigs.video import read_video, write_video

from .conftest import foreign_clip, simple_edit, textured_clip

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class StepEditor:
    """The server's contract with an exact edit (no model): planning keeps the clip as it is."""

    def __init__(self, steps: int = 4, step_s: float = 0.0) -> None:
        self.steps, self.step_s = steps, step_s

    def plan(self, frames, height, width):
        return EditPlan(frames, height, width, height, width, frames, [(0, frames)])

    def edit(self, frames, controls, *, progress, cancelled, camera_path=None, prompt=None, plan=None):
        for i in range(self.steps):
            if cancelled():
                raise Cancelled
            time.sleep(self.step_s)
            progress((i + 1) / self.steps)
        return simple_edit(frames, controls)


def make_app(tmp_path: Path, *, step_s: float = 0.0, steps: int = 4, **kw):
    config = ServeConfig(data_dir=tmp_path / "srv", token=TOKEN, poll_interval_s=0.05, **kw)
    return create_app(config, lambda device: StepEditor(steps, step_s))


@pytest.fixture
def clip_file(tmp_path) -> Path:
    return write_video(tmp_path / "in.mp4", textured_clip(frames=9), 8.0)


def upload(client, path: Path, controls: dict | str = None, ctype: str = "video/mp4"):
    body = controls if isinstance(controls, str) else json.dumps(controls or {})
    return client.post("/jobs", headers=AUTH, data={"controls": body},
                       files={"file": (path.name, path.read_bytes(), ctype)})


def wait(client, job_id: str, until=("succeeded", "failed", "cancelled"), timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/jobs/{job_id}", headers=AUTH).json()
        if status["status"] in until:
            return status
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} still {status}")


@pytest.mark.timeout(60)
def test_submit_poll_download(tmp_path, clip_file):
    with TestClient(make_app(tmp_path)) as client:
        assert client.get("/health").json()["ok"]
        assert "/jobs" in client.get("/openapi.json").json()["paths"]
        r = upload(client, clip_file, {"S": 0.6, "T": 0.3})
        assert r.status_code == 202, r.text
        job = r.json()
        assert job["status"] in ("queued", "running") and job["controls"]["S"] == 0.6
        done = wait(client, job["id"])
        assert done["status"] == "succeeded" and done["progress"] == 1.0 and done["output_url"]
        video = client.get(f"/jobs/{job['id']}/result", headers=AUTH)
        assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
        out = tmp_path / "out.mp4"
        out.write_bytes(video.content)
        frames, _ = read_video(out)
        source, _ = read_video(clip_file)
        assert frames.shape == source.shape
        assert frames.mean() > source.mean() + 10           # exposure raised
        assert frames[..., 2].mean() > frames[..., 0].mean()  # cooler


@pytest.mark.timeout(60)
def test_auth_and_input_validation(tmp_path, clip_file):
    with TestClient(make_app(tmp_path, max_upload_bytes=200_000, max_duration_s=2.0,
                             allowed_codecs=frozenset({"h264"}))) as client:
        payload = {"file": ("in.mp4", clip_file.read_bytes(), "video/mp4")}
        assert client.post("/jobs", files=payload).status_code == 401
        assert client.post("/jobs", files=payload, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert client.get("/jobs/" + "0" * 32).status_code == 401
        r = upload(client, clip_file, {"S": 3})
        assert r.status_code == 422 and "S" in r.json()["detail"]
        r = upload(client, clip_file, {"ISO": 100})
        assert r.status_code == 422 and "ISO" in r.json()["detail"]
        assert upload(client, clip_file, "{not json").status_code == 422
        r = upload(client, clip_file, ctype="text/plain")
        assert r.status_code == 415 and "video/mp4" in r.json()["detail"]
        assert upload(client, clip_file, ctype="application/octet-stream").status_code == 202   # curl -F default
        notes = tmp_path / "notes.txt"
        notes.write_bytes(clip_file.read_bytes())
        assert upload(client, notes, ctype="application/octet-stream").status_code == 415
        junk = tmp_path / "junk.mp4"
        junk.write_bytes(b"\x00not a video" * 100)
        assert upload(client, junk).status_code == 422
        big = tmp_path / "big.mp4"
        big.write_bytes(b"\x00" * 300_000)
        r = upload(client, big)
        assert r.status_code == 413 and "200000" in r.json()["detail"]
        long_clip = write_video(tmp_path / "long.mp4", textured_clip(frames=24, size=40), 8.0)
        r = upload(client, long_clip)
        assert r.status_code == 413 and "limit is 2.0 s" in r.json()["detail"]
        ffv1 = foreign_clip(tmp_path / "in.mkv", textured_clip(frames=3), "ffv1", "yuv444p")
        r = upload(client, ffv1, ctype="video/x-matroska")
        assert r.status_code == 415 and "ffv1" in r.json()["detail"]
        r = client.post("/jobs", headers=AUTH, data={"controls": "{}"})
        assert r.status_code == 422 and "exactly one" in r.json()["detail"]
        r = client.post("/jobs", headers=AUTH, data={"controls": "{}", "clip_id": "3"})
        assert r.status_code == 422 and "catalog" in r.json()["detail"]
        for bad in ("..%2F..%2Fjobs.db", "..", "%2Fetc%2Fpasswd", "A" * 32):
            assert client.get(f"/jobs/{bad}", headers=AUTH).status_code == 404
            assert client.get(f"/jobs/{bad}/result", headers=AUTH).status_code == 404
        assert len(list((tmp_path / "srv" / "uploads").iterdir())) == 1   # only the accepted one; refused removed


@pytest.mark.timeout(60)
def test_cancel_running_and_queued(tmp_path, clip_file):
    with TestClient(make_app(tmp_path, step_s=0.2, steps=50)) as client:
        first = upload(client, clip_file).json()["id"]
        second = upload(client, clip_file).json()["id"]
        wait(client, first, until=("running",))
        assert client.get(f"/jobs/{first}/result", headers=AUTH).status_code == 409
        assert client.post(f"/jobs/{second}/cancel", headers=AUTH).json()["status"] == "cancelled"
        client.post(f"/jobs/{first}/cancel", headers=AUTH)
        assert wait(client, first)["status"] == "cancelled"
        assert client.post(f"/jobs/{first}/cancel", headers=AUTH).status_code == 409


@pytest.mark.timeout(60)
def test_jobs_survive_restart(tmp_path, clip_file):
    data = tmp_path / "srv"
    (data / "uploads").mkdir(parents=True)
    queue = JobQueue(data / "jobs.db")
    inputs = []
    for name in ("a", "b", "c", "d"):
        inputs.append(data / "uploads" / f"{name}.mp4")
        inputs[-1].write_bytes(clip_file.read_bytes())
    interrupted = queue.submit(input_path=inputs[0], controls={"S": 0.5})
    queue.claim("cpu")                                              # the dead server was running it
    exhausted = queue.submit(input_path=inputs[1], controls={})
    queue.claim("cpu"), queue.get(exhausted)
    queue._exec("UPDATE jobs SET attempts = 2 WHERE id = ?", (exhausted,))
    waiting = queue.submit(input_path=inputs[2], controls={})
    lost = queue.submit(input_path=inputs[3], controls={})
    inputs[3].unlink()
    queue.close()
    with TestClient(make_app(tmp_path)) as client:
        assert wait(client, interrupted)["status"] == "succeeded"
        assert wait(client, waiting)["status"] == "succeeded"
        failed = wait(client, exhausted)
        assert failed["status"] == "failed" and "restart 2 time" in failed["error"]
        gone = wait(client, lost)
        assert gone["status"] == "failed" and "missing" in gone["error"]


@pytest.mark.timeout(60)
def test_catalog_clip_job(tmp_path, clip_file):
    from capture.catalog import open_catalog
    root = tmp_path / "lab"
    root.mkdir()
    video = root / "clip.mp4"
    video.write_bytes(clip_file.read_bytes())
    with open_catalog(root / "catalog.db") as cat:
        sid = cat.create_session("s")
        aid = cat.add_asset(video, sha256="x" * 64, bytes=video.stat().st_size, kind="clip", session_id=sid)
        clip_id = cat.add_clip(sid, "S=0", asset_id=aid, frames=9, fps=8)
    with TestClient(make_app(tmp_path, catalog=root / "catalog.db")) as client:
        r = client.post("/jobs", headers=AUTH, data={"controls": '{"T": -0.5}', "clip_id": str(clip_id)})
        assert r.status_code == 202, r.text
        assert r.json()["source"] == f"catalog:{clip_id}"
        assert wait(client, r.json()["id"])["status"] == "succeeded"
        r = client.post("/jobs", headers=AUTH, data={"controls": "{}", "clip_id": "999"})
        assert r.status_code == 404 and "999" in r.json()["detail"]
    assert video.is_file()  # a catalog clip is read in place, never moved or deleted


@pytest.mark.timeout(120)
def test_200_concurrent_status_polls_while_a_job_runs(tmp_path, clip_file):
    """Real uvicorn on 127.0.0.1 (ephemeral port), 200 concurrent polls through httpx while the worker runs."""
    import uvicorn
    app = make_app(tmp_path, step_s=0.2, steps=100)         # 20 s: the 200 polls land while it runs, even under load
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", limit_concurrency=500))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        with httpx.Client(base_url=base, timeout=10) as client:
            job = upload(client, clip_file).json()["id"]
            wait(client, job, until=("running",))
            deadline = time.monotonic() + 30       # past loading: the sampler has reported its first step
            while client.get(f"/jobs/{job}", headers=AUTH).json()["progress"] == 0 and time.monotonic() < deadline:
                time.sleep(0.05)

        async def poll_all():
            limits = httpx.Limits(max_connections=200)
            async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as ac:
                return await asyncio.gather(*(ac.get(f"/jobs/{job}", headers=AUTH) for _ in range(200)))

        responses = asyncio.run(poll_all())
        assert [r.status_code for r in responses] == [200] * 200
        assert {r.json()["status"] for r in responses} <= {"running", "succeeded"}
        assert any(0 < r.json()["progress"] < 1 for r in responses)
        with httpx.Client(base_url=base, timeout=10) as client:
            assert wait(client, job, timeout=30)["status"] == "succeeded"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
    assert not thread.is_alive()


@pytest.mark.timeout(60)
def test_long_poll_returns_when_the_job_ends(tmp_path, clip_file):
    with TestClient(make_app(tmp_path, step_s=0.05, steps=10)) as client:
        job = upload(client, clip_file).json()["id"]
        t0 = time.monotonic()
        status = client.get(f"/jobs/{job}", headers=AUTH, params={"wait": 30}).json()
        assert status["status"] == "succeeded" and time.monotonic() - t0 < 25
        assert client.get(f"/jobs/{job}", headers=AUTH, params={"wait": 999}).status_code == 422

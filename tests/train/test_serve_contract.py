"""The server's promises over a real uvicorn on 127.0.0.1: authentication before the body, streamed uploads with
limits enforced while reading, output of the input's length and size (or a refusal up front), and every response
as the OpenAPI document says (schemathesis, bounded)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from rigs import controls as registry
from train.editor import load_editor
from train.serve import ServeConfig, create_app
from rigs.video import read_video, write_video

from .conftest import foreign_clip, textured_clip
from .serving import dir_bytes, raw_request, running, status_of
from .test_serve import StepEditor

TOKEN = "contract-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BIG = 100 * 1024 * 1024


def step_app(tmp_path: Path, **kw):
    config = ServeConfig(data_dir=tmp_path / "srv", token=TOKEN, poll_interval_s=0.02, **kw)
    return create_app(config, lambda device: StepEditor())


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A real tiny CineCtrl model directory (untrained weights) in the layout `train run` writes."""
    from train.config import RunConfig
    from train.finetune import build_models
    from train.runfiles import save_model_dir
    root = tmp_path_factory.mktemp("model")
    cfg = RunConfig(name="contract", output_dir=str(root))
    transformer, vae = build_models(cfg)
    return save_model_dir(transformer, vae, cfg, root / "model")


def wait_final(client: httpx.Client, job: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/jobs/{job}", params={"wait": 5}).json()
        if status["status"] in ("succeeded", "failed", "cancelled"):
            return status
    raise AssertionError(f"job {job} did not finish: {status}")


# ------------------------------------------------------------------------------------------------ auth, limits

@pytest.mark.timeout(120)
def test_no_token_large_body_is_refused_before_it_is_read(tmp_path, monkeypatch):
    spool = tmp_path / "spool"                           # where a framework would spool an upload
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    app = step_app(tmp_path, max_upload_bytes=2_000_000)
    with running(app) as base:
        before = dir_bytes(tmp_path / "srv")
        head = (f"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                f"Content-Length: {BIG}\r\n\r\n")
        t0 = time.monotonic()
        response, sent = raw_request(base, head)            # headers only: the body is never sent
        assert status_of(response) == 401, response[:300]
        assert time.monotonic() - t0 < 5                    # answered without waiting for 100 MB
        assert b"bearer token" in response and b"www-authenticate: Bearer" in response.lower().replace(b"bearer", b"Bearer")
        # a client that streams the 100 MB anyway: the server answers and closes; only what socket buffers
        # hold gets through, and none of it reaches the disk
        chunk = b"\0" * (1 << 20)
        response, sent = raw_request(base, head, (chunk for _ in range(100)))
        assert status_of(response) == 401
        assert sent < BIG // 4, f"the server kept reading: {sent} bytes accepted"
        with httpx.Client(base_url=base) as client:
            assert client.post("/jobs", headers={"Authorization": "Bearer wrong"},
                               files={"file": ("a.mp4", b"\0" * 3_000_000, "video/mp4")}).status_code == 401
        assert dir_bytes(tmp_path / "srv") == before
        assert not list((tmp_path / "srv" / "uploads").iterdir()) and not list(spool.iterdir())


@pytest.mark.timeout(120)
def test_content_length_is_checked_first_and_the_limit_while_reading(tmp_path):
    limit = 1_000_000
    app = step_app(tmp_path, max_upload_bytes=limit)
    clip = write_video(tmp_path / "in.mp4", textured_clip(frames=9), 8.0).read_bytes()
    with running(app) as base:
        auth = f"Authorization: Bearer {TOKEN}\r\n"
        head = (f"POST /jobs HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: multipart/form-data; boundary=b\r\n"
                f"Content-Length: {BIG}\r\n\r\n")
        response, _ = raw_request(base, head)
        assert status_of(response) == 413 and b"larger than the limit" in response

        # chunked (no Content-Length): the file part is counted as it arrives and refused at the limit
        def chunked(parts):
            for part in parts:
                yield f"{len(part):x}\r\n".encode() + part + b"\r\n"
            yield b"0\r\n\r\n"
        preamble = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n'
                    b"Content-Type: video/mp4\r\n\r\n")
        head = (f"POST /jobs HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: multipart/form-data; boundary=b\r\n"
                f"Transfer-Encoding: chunked\r\n\r\n")
        response, sent = raw_request(base, head, chunked([preamble] + [b"\1" * 65536] * 400))
        assert status_of(response) == 413 and f"limit of {limit} bytes".encode() in response, response[:300]
        assert sent < 400 * 65536
        assert not list((tmp_path / "srv" / "uploads").iterdir())     # the partial file is gone

        # streamed to its final path while the body is still arriving (no temporary spool first)
        with httpx.Client(base_url=base, headers=AUTH, timeout=30) as client:
            seen = []

            def slow_body():
                yield preamble
                half = len(clip) // 2
                yield clip[:half]
                time.sleep(0.5)
                seen.extend(p.stat().st_size for p in (tmp_path / "srv" / "uploads").iterdir())
                yield clip[half:]
                yield b'\r\n--b\r\nContent-Disposition: form-data; name="controls"\r\n\r\n{"S": 0.2}\r\n--b--\r\n'
            r = client.post("/jobs", content=slow_body(),
                            headers={"Content-Type": "multipart/form-data; boundary=b"})
            assert r.status_code == 202, r.text
            assert seen and 0 < seen[0] < len(clip), seen
            assert wait_final(client, r.json()["id"])["status"] == "succeeded"


# ------------------------------------------------------------------------------------------------ output shape

@pytest.mark.timeout(240)
def test_output_has_the_inputs_length_and_size_or_is_refused_up_front(tmp_path, model_dir):
    config = ServeConfig(data_dir=tmp_path / "srv", token=TOKEN, poll_interval_s=0.02, max_frames=60)
    app = create_app(config, lambda device: load_editor(model_dir, device, steps=2, max_frames=60))
    source = textured_clip(frames=25, size=96)[:, :64, :]                # 25 frames at 96x64 (the clip)
    path = write_video(tmp_path / "wide.mp4", source, 12.0)
    with running(app) as base, httpx.Client(base_url=base, headers=AUTH, timeout=60) as client:
        path_json = json.dumps({"slider_mm": [0, 15, 30]})
        r = client.post("/jobs", data={"controls": '{"S": 0.4, "ISO": 0.2}', "camera_path": path_json},
                        files={"file": ("wide.mp4", path.read_bytes(), "video/mp4")})
        assert r.status_code == 202, r.text
        plan = r.json()["plan"]
        assert plan["frames"] == 25 and (plan["width"], plan["height"]) == (96, 64)
        assert len(plan["windows"]) > 1 and "carried back to 96x64" in plan["description"]
        assert plan["content"] == [5, 0, 21, 32]          # fitted into the model's 32x32, aspect kept
        done = wait_final(client, r.json()["id"])
        assert done["status"] == "succeeded", done
        assert done["result"] == {"frames": 25, "width": 96, "height": 64, "fps": 12.0}
        assert done["camera_path"] == {"slider_mm": [0, 15, 30]}
        out = tmp_path / "out.mp4"
        out.write_bytes(client.get(f"/jobs/{done['id']}/result").content)
        frames, fps = read_video(out)
        assert frames.shape == source.shape and fps == 12.0

        # an odd-sized upload (4:4:4, as another tool writes it) is edited at its size; the result is H.264 4:2:0,
        # so its odd sides lose their last column/row (rigs/video.py), and the job says the size it wrote
        odd = foreign_clip(tmp_path / "odd.mp4", textured_clip(frames=6, size=40)[:, :33, :37], "libx264", "yuv444p")
        r = client.post("/jobs", files={"file": ("odd.mp4", odd.read_bytes(), "video/mp4")})
        assert r.status_code == 202, r.text
        assert (r.json()["plan"]["width"], r.json()["plan"]["height"]) == (37, 33)
        done = wait_final(client, r.json()["id"])
        assert done["result"]["frames"] == 6 and (done["result"]["width"], done["result"]["height"]) == (36, 32)
        out.write_bytes(client.get(f"/jobs/{done['id']}/result").content)
        assert read_video(out)[0].shape == (6, 32, 36, 3)

        jobs_before = len(list((tmp_path / "srv" / "uploads").iterdir()))
        narrow = write_video(tmp_path / "narrow.mp4", textured_clip(frames=9, size=64)[:, :10, :], 8.0)
        r = client.post("/jobs", files={"file": ("narrow.mp4", narrow.read_bytes(), "video/mp4")})
        assert r.status_code == 422 and "at least 16 px" in r.json()["detail"], r.text
        long = write_video(tmp_path / "long.mp4", np.resize(textured_clip(frames=9, size=32), (61, 32, 32, 3)), 30.0)
        r = client.post("/jobs", files={"file": ("long.mp4", long.read_bytes(), "video/mp4")})
        assert r.status_code == 413 and "61 frames" in r.json()["detail"]
        assert len(list((tmp_path / "srv" / "uploads").iterdir())) == jobs_before    # refused, nothing kept


@pytest.mark.timeout(60)
def test_every_registry_control_and_both_camera_path_forms_are_accepted(tmp_path):
    app = step_app(tmp_path)
    clip = write_video(tmp_path / "in.mp4", textured_clip(frames=9), 8.0).read_bytes()
    every = {c.api_field: c.high for c in registry.CONTROLS}
    with running(app) as base, httpx.Client(base_url=base, headers=AUTH, timeout=30) as client:
        form = client.get("/openapi.json").json()["paths"]["/jobs"]["post"]["requestBody"]["content"]
        documented = form["multipart/form-data"]["schema"]["properties"]["controls"]["contentSchema"]["properties"]
        assert set(documented) == set(registry.NAMES)
        pose = [1, 0, 0, 0.01, 0, 1, 0, 0, 0, 0, 1, 0]
        for path in ({"slider_mm": [0, 40]}, {"poses": [pose, [[1, 0, 0, 0.02], [0, 1, 0, 0], [0, 0, 1, 0]]]}):
            r = client.post("/jobs", data={"controls": json.dumps(every), "camera_path": json.dumps(path)},
                            files={"file": ("in.mp4", clip, "video/mp4")})
            assert r.status_code == 202, r.text
            assert r.json()["controls"] == every and r.json()["camera_path"] == path
        bad = client.post("/jobs", data={"camera_path": '{"poses": [[1, 2, 3]]}'},
                          files={"file": ("in.mp4", clip, "video/mp4")})
        assert bad.status_code == 422 and "poses[0]" in bad.json()["detail"] and "12" in bad.json()["detail"]
        bad = client.post("/jobs", data={"camera_path": '{"slider_mm": [0, "far"]}'},
                          files={"file": ("in.mp4", clip, "video/mp4")})
        assert bad.status_code == 422 and "slider_mm[1]" in bad.json()["detail"]


# ------------------------------------------------------------------------------------------------ OpenAPI

@pytest.mark.timeout(300)
def test_every_response_matches_the_openapi_document(tmp_path):
    """schemathesis (all checks but positive_data_acceptance: a schema cannot say "a decodable video"), a fixed
    seed and a bounded number of examples, against a real server with one finished job for the job routes."""
    app = step_app(tmp_path, max_upload_bytes=2_000_000)
    clip = write_video(tmp_path / "in.mp4", textured_clip(frames=9), 8.0).read_bytes()
    schemathesis = Path(sys.executable).with_name("schemathesis")
    with running(app) as base, httpx.Client(base_url=base, headers=AUTH, timeout=30) as client:
        job = client.post("/jobs", files={"file": ("in.mp4", clip, "video/mp4")}).json()["id"]
        assert wait_final(client, job)["status"] == "succeeded"
        config = tmp_path / "schemathesis.toml"
        config.write_text('[[operations]]\ninclude-path-regex = "^/jobs/\\\\{job_id\\\\}"\n'
                          f'parameters = {{ job_id = "{job}" }}\n')
        done = subprocess.run([str(schemathesis), "--config-file", str(config), "run", f"{base}/openapi.json",
                               "-H", f"Authorization: Bearer {TOKEN}", "--checks", "all",
                               "--exclude-checks", "positive_data_acceptance", "--max-examples", "25",
                               "--seed", "18", "--request-timeout", "20", "--no-color"],
                              capture_output=True, text=True, timeout=240, cwd=tmp_path,
                              env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
    report = done.stdout[-4000:] + done.stderr[-2000:]
    assert done.returncode == 0, report
    assert "passed" in done.stdout and "failed" not in done.stdout.split("SUMMARY")[-1], report

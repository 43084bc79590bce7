"""Server overhead: end-to-end job latency through HTTP (upload, queue, worker, poll, download) against calling
the same pipeline directly (decode, edit, encode) in the same run, alternating, on a tiny model.

    .venv/bin/python benchmarks/serve.py [--jobs 8] [--steps 20]

Target: server overhead <= 10 %. The client long-polls (`GET /jobs/{id}?wait=30` returns when the job ends).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from train import finetune as FT  # noqa: E402
from train.editor import load_editor  # noqa: E402
from train.serve import ServeConfig, bind_socket, create_app  # noqa: E402
from train.videoio import read_video, write_video  # noqa: E402


def make_model(root: Path, size: int, frames: int) -> Path:
    cfg = FT.RunConfig(name="bench", output_dir=str(root))
    cfg.data.size, cfg.data.num_frames = [size, size], frames
    transformer, vae = FT.build_models(cfg)
    FT._save_model_dir(transformer, vae, cfg, root / "model")
    return root / "model"


def make_clip(path: Path, frames: int, size: int) -> Path:
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur((rng.random((size * 2, size * 2, 3)) * 255).astype(np.uint8), (5, 5), 1)
    return write_video(path, np.stack([base[i:i + size, i:i + size] for i in range(frames)]), 8.0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--frames", type=int, default=17)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    model = make_model(tmp / "m", args.size, args.frames)
    clip = make_clip(tmp / "in.mp4", args.frames, args.size)
    controls = {"S": 0.4, "T": -0.3}

    direct_editor = load_editor(model, "cpu", steps=args.steps)

    def direct() -> float:
        t0 = time.perf_counter()
        frames, fps = read_video(clip, max_frames=81)
        out = direct_editor.edit(frames, controls)
        write_video(tmp / "direct.mp4", out, fps)
        return time.perf_counter() - t0

    config = ServeConfig(data_dir=tmp / "srv", token="bench", poll_interval_s=0.01)
    app = create_app(config, lambda d: load_editor(model, d, steps=args.steps))
    import uvicorn
    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    client = httpx.Client(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}",
                          headers={"Authorization": "Bearer bench"}, timeout=60)
    payload = clip.read_bytes()

    def via_server() -> float:
        t0 = time.perf_counter()
        r = client.post("/jobs", data={"controls": json.dumps(controls)},
                        files={"file": ("in.mp4", payload, "video/mp4")})
        job = r.json()["id"]
        while client.get(f"/jobs/{job}", params={"wait": 30}).json()["status"] not in ("succeeded", "failed",
                                                                                      "cancelled"):
            pass
        body = client.get(f"/jobs/{job}/result").content
        assert body, "empty result"
        return time.perf_counter() - t0

    direct(), via_server()                                  # warm-up both paths
    d, s = [], []
    for _ in range(args.jobs):                              # alternate so machine noise hits both alike
        d.append(direct())
        s.append(via_server())
    server.should_exit = True
    thread.join(timeout=20)
    dm, sm = statistics.median(d), statistics.median(s)
    print(f"clip {args.frames}x{args.size}x{args.size}, {args.steps} sampling steps, {args.jobs} jobs each")
    print(f"direct pipeline   median {dm * 1000:8.1f} ms  (min {min(d) * 1000:.1f})")
    print(f"through server    median {sm * 1000:8.1f} ms  (min {min(s) * 1000:.1f})")
    print(f"server overhead   {(sm - dm) * 1000:8.1f} ms = {100 * (sm / dm - 1):+.1f} %  (target <= 10 %)")


if __name__ == "__main__":
    main()

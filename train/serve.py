"""HTTP service for CineCtrl edits: submit (upload or catalog clip + controls), poll, download, cancel.

One worker thread per device drains a SQLite-persisted queue (train/jobs.py), because diffusers pipelines are
not thread-safe; each worker owns its own pipeline. Everything the server touches on disk is named by the
server (job ids are server-made UUIDs, catalog clips are looked up by integer id), never by a client path.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

import numpy as np
from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from rigs import controls as registry

from .jobs import JobQueue
from .videoio import VideoError, probe, read_video, write_video

log = logging.getLogger(__name__)
TOKEN_ENV = "CINECTRL_SERVE_TOKEN"
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
VIDEO_TYPES = {"video/mp4": ".mp4", "video/quicktime": ".mov", "video/x-matroska": ".mkv", "video/webm": ".webm",
               "video/x-msvideo": ".avi"}


class Cancelled(Exception):
    """Raised inside a pipeline call when the job was cancelled."""


class EditPipeline(Protocol):
    """What the server needs from a model: edit one clip, report progress in [0, 1], stop when asked."""

    def edit(self, frames: np.ndarray, controls: Mapping[str, float], *,
             progress: Callable[[float], None], cancelled: Callable[[], bool]) -> np.ndarray: ...


def _controls_model() -> type[BaseModel]:
    """The request's controls object, one field per registry control (rigs/controls.py), ranges enforced."""
    fields = {c.api_field: (float, Field(c.neutral, ge=c.low, le=c.high, description=c.help))
              for c in registry.CONTROLS}
    return create_model("Controls", __config__=ConfigDict(extra="forbid"),
                        __doc__="CineCtrl's normalised controls (docs/controls.md gives their physical meaning).",
                        **fields)


Controls = _controls_model()


class JobStatus(BaseModel):
    id: str
    status: str
    progress: float
    eta_s: float | None
    source: str
    controls: dict[str, float]
    error: str | None
    output_url: str | None
    device: str | None


@dataclass
class ServeConfig:
    data_dir: Path
    token: str
    devices: list[str] = field(default_factory=lambda: ["cpu"])
    catalog: Path | None = None
    max_upload_bytes: int = 256 * 1024 * 1024
    max_duration_s: float = 20.0
    max_frames: int = 81
    allowed_codecs: frozenset[str] = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "libdav1d", "mpeg4", "ffv1",
                                                "mjpeg", "prores"})
    poll_interval_s: float = 0.2


class Worker(threading.Thread):
    """Drains the queue for one device with its own pipeline instance."""

    def __init__(self, device: str, queue: JobQueue, pipeline: EditPipeline, config: ServeConfig,
                 wake: threading.Event, stop: threading.Event) -> None:
        super().__init__(name=f"cinectrl-worker-{device}", daemon=True)
        self.device, self.queue, self.pipeline, self.config = device, queue, pipeline, config
        self.wake, self.stop = wake, stop

    def run(self) -> None:
        while not self.stop.is_set():
            job = self.queue.claim(self.device)
            if job is None:
                self.wake.wait(self.config.poll_interval_s)
                self.wake.clear()
                continue
            self.run_job(job)

    def run_job(self, job: dict[str, Any]) -> None:
        job_id = job["id"]
        try:
            frames, fps = read_video(job["input_path"], max_frames=self.config.max_frames)
            output = self.pipeline.edit(
                frames, job["controls"], progress=lambda p: self.queue.set_progress(job_id, p),
                cancelled=lambda: self.queue.cancel_requested(job_id))
            if self.queue.cancel_requested(job_id):
                raise Cancelled
            out_path = self.config.data_dir / "outputs" / f"{job_id}.mp4"
            write_video(out_path, output, fps)
            self.queue.finish(job_id, out_path)
        except Cancelled:
            self.queue.mark_cancelled(job_id)
        except VideoError as exc:
            self.queue.fail(job_id, str(exc).replace(str(self.config.data_dir), "<data>"))
        except Exception as exc:  # noqa: BLE001 - a failed job must never kill the worker
            log.exception("job %s failed", job_id)
            self.queue.fail(job_id, f"{type(exc).__name__}: {exc}")


def create_app(config: ServeConfig, pipeline_factory: Callable[[str], EditPipeline]) -> FastAPI:
    """The app; workers start with the app's lifespan (one per configured device)."""
    if not config.token:
        raise ValueError(f"a bearer token is required: set {TOKEN_ENV}")
    for sub in ("uploads", "outputs"):
        (config.data_dir / sub).mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        queue = JobQueue(config.data_dir / "jobs.db")
        recovered = queue.recover()
        if any(recovered.values()):
            log.warning("recovered jobs after restart: %s", recovered)
        wake, stop = threading.Event(), threading.Event()
        workers = [Worker(d, queue, pipeline_factory(d), config, wake, stop) for d in config.devices]
        for w in workers:
            w.start()
        state.update(queue=queue, wake=wake, stop=stop, workers=workers, started=time.time())
        try:
            yield
        finally:
            stop.set(), wake.set()
            for w in workers:
                w.join(timeout=30)
            queue.close()

    app = FastAPI(title="cinectrl serve", version="1", lifespan=lifespan,
                  description="Photographic video edits with a CineCtrl model. Every route but /health needs "
                              f"`Authorization: Bearer <token>` (the server reads it from ${TOKEN_ENV}).")
    bearer = HTTPBearer(auto_error=False)

    def authorised(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if creds is None or not secrets.compare_digest(creds.credentials.encode(), config.token.encode()):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    def queue() -> JobQueue:
        return state["queue"]

    def status_of(job: dict[str, Any], request: Request) -> JobStatus:
        eta = None
        if job["status"] == "running" and job["started_at"] and job["progress"] > 0:
            elapsed = time.time() - job["started_at"]
            eta = elapsed * (1 - job["progress"]) / job["progress"]
        url = str(request.url_for("download", job_id=job["id"])) if job["status"] == "succeeded" else None
        return JobStatus(id=job["id"], status=job["status"], progress=job["progress"], eta_s=eta,
                         source=job["source"], controls=job["controls"], error=job["error"], output_url=url,
                         device=job["device"])

    def job_or_404(job_id: str) -> dict[str, Any]:
        if not JOB_ID.match(job_id):
            raise HTTPException(404, f"no job {job_id!r}: ids are 32 lowercase hex characters")
        job = queue().get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return job

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "devices": config.devices}

    @app.post("/jobs", status_code=202, response_model=JobStatus, dependencies=[Depends(authorised)])
    async def submit(request: Request, controls: str = Form("{}", description="JSON object of controls"),
                     file: UploadFile | None = File(None, description="the source clip"),
                     clip_id: int | None = Form(None, description="a catalog clip id instead of an upload")
                     ) -> JobStatus:
        try:
            parsed = Controls.model_validate_json(controls)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'controls'}: {e['msg']}" for e in exc.errors())
            raise HTTPException(422, f"bad controls {controls[:200]!r}: {problems}") from None
        if (file is None) == (clip_id is None):
            raise HTTPException(422, "give exactly one of: an uploaded 'file', or a catalog 'clip_id'")
        job_id = secrets.token_hex(16)
        if file is not None:
            path, source = await _save_upload(file, job_id), "upload"
        else:
            path, source = _catalog_clip(clip_id), f"catalog:{clip_id}"
        try:
            _validate_video(path)
        except HTTPException:
            if source == "upload":
                path.unlink(missing_ok=True)
            raise
        queue().submit(input_path=path, controls=parsed.model_dump(), source=source, job_id=job_id)
        state["wake"].set()
        return status_of(queue().get(job_id), request)

    async def _save_upload(file: UploadFile, job_id: str) -> Path:
        ctype = (file.content_type or "").split(";")[0].strip().lower()
        suffix = Path(file.filename or "").suffix.lower()
        if ctype == "application/octet-stream" and suffix in VIDEO_TYPES.values():
            # curl -F file=@clip.mp4 sends octet-stream: trust a video extension, the probe below decides
            ctype = next(t for t, ext in VIDEO_TYPES.items() if ext == suffix)
        if ctype not in VIDEO_TYPES:
            raise HTTPException(415, f"content type {ctype or 'none'!r} is not a video; "
                                     f"send one of {', '.join(sorted(VIDEO_TYPES))}")
        path = config.data_dir / "uploads" / f"{job_id}{VIDEO_TYPES[ctype]}"   # never the client's filename
        size = 0
        with path.open("wb") as out:
            while chunk := await file.read(1 << 20):
                size += len(chunk)
                if size > config.max_upload_bytes:
                    out.close(), path.unlink(missing_ok=True)
                    raise HTTPException(413, f"upload larger than the limit of {config.max_upload_bytes} bytes")
                out.write(chunk)
        if size == 0:
            path.unlink(missing_ok=True)
            raise HTTPException(422, "the uploaded file is empty")
        return path

    def _catalog_clip(clip_id: int) -> Path:
        if config.catalog is None:
            raise HTTPException(422, "this server has no catalog (start it with --catalog) — upload the clip")
        from capture.catalog import open_catalog
        with open_catalog(config.catalog, readonly=True) as cat:
            rows = cat.rows("SELECT a.path FROM clips c JOIN assets a ON a.id = c.asset_id WHERE c.id = ?",
                            (clip_id,))
            if not rows:
                raise HTTPException(404, f"no clip {clip_id} with a video file in the catalog")
            path = Path(cat.abspath(rows[0]["path"]))
        if not path.is_file():
            raise HTTPException(404, f"catalog clip {clip_id}: its file is missing on the server")
        return path

    def _validate_video(path: Path) -> None:
        try:
            info = probe(path)
        except VideoError:
            raise HTTPException(422, "the clip is not a decodable video") from None
        if info.codec not in config.allowed_codecs:
            raise HTTPException(415, f"codec {info.codec!r} not accepted; use one of "
                                     f"{', '.join(sorted(config.allowed_codecs))}")
        if info.duration_s > config.max_duration_s:
            raise HTTPException(413, f"clip lasts {info.duration_s:.1f} s; the limit is {config.max_duration_s} s")
        if info.frames < 1 or info.width < 16 or info.height < 16:
            raise HTTPException(422, f"clip too small ({info.width}x{info.height}, {info.frames} frames)")

    @app.get("/jobs/{job_id}", response_model=JobStatus, dependencies=[Depends(authorised)])
    async def status(job_id: str, request: Request,
                     wait: float = Query(0, ge=0, le=60, description="long poll: return as soon as the job "
                                                                      "ends, or after this many seconds")
                     ) -> JobStatus:
        job = job_or_404(job_id)
        if wait > 0 and job["status"] not in ("succeeded", "failed", "cancelled"):
            job = await run_in_threadpool(queue().wait_final, job_id, wait)
        return status_of(job, request)

    @app.get("/jobs/{job_id}/result", name="download", dependencies=[Depends(authorised)],
             response_class=FileResponse)
    def download(job_id: str) -> FileResponse:
        job = job_or_404(job_id)
        if job["status"] != "succeeded":
            raise HTTPException(409, f"job {job_id} is {job['status']}; the result exists once it has succeeded")
        path = Path(job["output_path"])
        if not path.is_file():
            raise HTTPException(410, f"job {job_id}: the result file was removed from the server")
        return FileResponse(path, media_type="video/mp4", filename=f"cinectrl-{job_id}.mp4")

    @app.post("/jobs/{job_id}/cancel", response_model=JobStatus, dependencies=[Depends(authorised)])
    def cancel(job_id: str, request: Request) -> JobStatus:
        job = job_or_404(job_id)
        if job["status"] in ("succeeded", "failed", "cancelled"):
            raise HTTPException(409, f"job {job_id} already {job['status']}")
        queue().cancel(job_id)
        return status_of(queue().get(job_id), request)

    return app


def token_from_env() -> str:
    return os.environ.get(TOKEN_ENV, "")



def bind_socket(host: str = "127.0.0.1", port: int = 0) -> "socket.socket":
    """A listening socket with TCP_NODELAY (accepted sockets inherit it). Without it every small response
    waited ~40 ms on delayed ACKs here — measured by benchmarks/serve.py."""
    import socket
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    return sock


def run_server(app: FastAPI, host: str, port: int, *, log_level: str = "info") -> None:
    import uvicorn
    sock = bind_socket(host, port)
    log.warning("cinectrl serve listening on http://%s:%d (docs at /docs)", host, sock.getsockname()[1])
    uvicorn.Server(uvicorn.Config(app, log_level=log_level)).run(sockets=[sock])

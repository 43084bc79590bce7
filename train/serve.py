"""HTTP service for CineCtrl edits: submit (upload or catalog clip + controls + camera path), poll, download,
cancel.

Promises, each tested: the bearer token is checked before any body byte is read (`train/upload.py`'s
`RequestGuard`), so an unauthenticated upload costs no disk; an upload streams to its final file with the size
limit enforced while reading (`Content-Length` checked first); a clip is planned at submit time through the model's
own editor (`train/editor.py`) — what cannot be edited whole is refused with the reason before it is queued, and
the output has the input's frame count and size; every response is the one the OpenAPI document describes.

One worker thread per device drains a SQLite-persisted queue (train/jobs.py), because diffusers pipelines are not
thread-safe; each worker owns its own editor. Everything the server touches on disk is named by the server (job
ids are server-made, catalog clips are looked up by integer id), never by a client path.
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
from typing import Any, Callable, Literal, Mapping, Protocol

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException

from rigs import controls as registry

from . import camera_path as CP
from .editor import Cancelled, EditPlan, EditRefused
from .jobs import JobQueue
from .upload import BodyError, RequestGuard, read_form
from rigs.video import VideoError, even_size, probe, read_video, write_video

log = logging.getLogger(__name__)
TOKEN_ENV = "CINECTRL_SERVE_TOKEN"
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
VIDEO_TYPES = {"video/mp4": ".mp4", "video/quicktime": ".mov", "video/x-matroska": ".mkv", "video/webm": ".webm",
               "video/x-msvideo": ".avi"}
PUBLIC_PATHS = ("/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
FORM_FIELDS = {"file", "clip_id", "controls", "camera_path", "prompt"}
MAX_FIELD_BYTES = 256 * 1024            # controls, camera path (up to thousands of keyframes), prompt
MAX_PROMPT_CHARS = 2000
__all__ = ["Cancelled", "ServeConfig", "create_app", "bind_socket", "run_server", "token_from_env", "TOKEN_ENV"]


class EditPipeline(Protocol):
    """What the server needs from a model (train.editor.ClipEditor): plan a clip before any work, edit it whole
    (same length and size), report progress in [0, 1], stop when asked."""

    def plan(self, frames: int, height: int, width: int) -> EditPlan: ...

    def edit(self, frames: np.ndarray, controls: Mapping[str, float], *, camera_path: CP.CameraPath | None,
             prompt: str | None, progress: Callable[[float], None], cancelled: Callable[[], bool],
             plan: EditPlan | None) -> np.ndarray: ...


# ------------------------------------------------------------------------------------------------ API models

def _controls_model() -> type[BaseModel]:
    """The request's controls object, one field per registry control (rigs/controls.py), ranges enforced."""
    fields = {c.api_field: (float, Field(c.neutral, ge=c.low, le=c.high, description=c.help))
              for c in registry.CONTROLS}
    return create_model("Controls", __config__=ConfigDict(extra="forbid"),
                        __doc__="CineCtrl's normalised controls (docs/controls.md gives their physical meaning).",
                        **fields)


Controls = _controls_model()


class Error(BaseModel):
    detail: str = Field(description="what went wrong and what to send instead, in one line")


class Plan(BaseModel):
    """How the clip is fitted to the model and back: the output always has the input's frames and size."""

    frames: int
    width: int
    height: int
    work_width: int = Field(description="width the model edits at (the model's own frame size)")
    work_height: int
    content: list[int] = Field(default_factory=list, description="the clip's box in that frame: top, left, height, "
                               "width (aspect kept, the rest edge-padded; rigs.video.fit_frames)")
    window: int = Field(description="frames per model call")
    windows: list[list[int]] = Field(description="[start, end) frame ranges, overlapping and blended")
    padded_to: int | None = Field(description="a short clip's length padded to 4k+1, trimmed back after")
    description: str


class Result(BaseModel):
    frames: int
    width: int
    height: int
    fps: float


class JobStatus(BaseModel):
    id: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: float = Field(ge=0, le=1)
    eta_s: float | None
    source: str
    controls: dict[str, float]
    camera_path: dict[str, Any] | None
    prompt: str | None
    plan: Plan | None
    result: Result | None = Field(description="the output's frames, size and rate once succeeded")
    error: str | None
    output_url: str | None
    device: str | None


class Health(BaseModel):
    ok: bool
    devices: list[str]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {400: "malformed request", 401: "missing or wrong bearer token", 404: "no such job or clip",
            409: "the job is not in a state for this", 410: "the result file is gone", 413: "too large",
            415: "unsupported media type", 422: "invalid input (the detail names the field and the fix)"}
    return {code: {"model": Error, "description": text[code]} for code in codes}


def _form_schema() -> dict[str, Any]:
    camera = {"type": "string", "description": 'JSON: {"slider_mm": [offsets in mm, keyframes spread over the '
                                               'clip]} or {"poses": [[12 numbers: 3x4 [R|t], t in metres], ...]}; '
                                               "the target camera relative to the source's",
              "contentMediaType": "application/json", "examples": ['{"slider_mm": [0, 20]}']}
    controls = {"type": "string", "default": "{}", "contentMediaType": "application/json",
                "contentSchema": Controls.model_json_schema(),
                "description": "JSON object of controls: " + registry.listing(),
                "examples": ['{"K": 0.6, "d_f": 0.3, "S": 0.2}']}
    fields = {"clip_id": {"type": "integer", "minimum": 1, "description": "a catalog clip id instead of an upload"},
              "controls": controls, "camera_path": camera,
              "prompt": {"type": "string", "maxLength": MAX_PROMPT_CHARS,
                         "description": "text prompt (used when the model has a text encoder)"}}
    upload = {"type": "string", "format": "binary", "description": "the source clip (" + ", ".join(sorted(VIDEO_TYPES))
              + "; application/octet-stream with a video file extension)"}
    exactly_one = [{"required": ["file"]}, {"required": ["clip_id"]}]          # both present match both: refused
    return {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {"file": upload, **fields},
                                           "oneOf": exactly_one},
                                "encoding": {"file": {"contentType": ", ".join(sorted(VIDEO_TYPES))}}},
        "application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": fields,
                                                         "required": ["clip_id"]}}}}


# ------------------------------------------------------------------------------------------------ config, worker

@dataclass
class ServeConfig:
    data_dir: Path
    token: str
    devices: list[str] = field(default_factory=lambda: ["cpu"])
    catalog: Path | None = None
    max_upload_bytes: int = 256 * 1024 * 1024
    max_duration_s: float = 20.0
    max_frames: int = 241
    allowed_codecs: frozenset[str] = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "libdav1d", "mpeg4", "ffv1",
                                                "mjpeg", "prores"})
    poll_interval_s: float = 0.2

    @property
    def max_body_bytes(self) -> int:
        """The whole multipart body: the file plus the text fields and part headers."""
        return self.max_upload_bytes + 4 * MAX_FIELD_BYTES + 64 * 1024


class Worker(threading.Thread):
    """Drains the queue for one device with its own editor."""

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
            frames, fps = read_video(job["input_path"], max_frames=self.config.max_frames + 1)
            if len(frames) > self.config.max_frames:
                raise EditRefused(f"the clip has more than {self.config.max_frames} frames")
            plan = self.pipeline.plan(*frames.shape[:3])          # decoded frames can differ from the header
            output = self.pipeline.edit(
                frames, job["controls"], camera_path=CP.parse(job["camera_path"]), prompt=job["prompt"],
                progress=lambda p: self.queue.set_progress(job_id, p),
                cancelled=lambda: self.queue.cancel_requested(job_id), plan=plan)
            if self.queue.cancel_requested(job_id):
                raise Cancelled
            if output.shape != frames.shape:
                raise RuntimeError(f"the editor returned {output.shape} for an input of {frames.shape}")
            out_path = self.config.data_dir / "outputs" / f"{job_id}.mp4"
            write_video(out_path, output, fps)
            width, height = even_size(output.shape[2], output.shape[1])     # as written: odd sides lose one px
            self.queue.finish(job_id, out_path, {"frames": output.shape[0], "width": width,
                                                 "height": height, "fps": float(fps)})
        except Cancelled:
            self.queue.mark_cancelled(job_id)
        except (VideoError, EditRefused) as exc:
            self.queue.fail(job_id, str(exc).replace(str(self.config.data_dir), "<data>"))
        except Exception as exc:  # noqa: BLE001 - a failed job must never kill the worker
            log.exception("job %s failed", job_id)
            self.queue.fail(job_id, f"{type(exc).__name__}: {exc}")


# ------------------------------------------------------------------------------------------------ app

def create_app(config: ServeConfig, pipeline_factory: Callable[[str], EditPipeline]) -> RequestGuard:
    """The ASGI app: the FastAPI routes (`.app`) behind the request guard; workers start with the lifespan."""
    if not config.token:
        raise ValueError(f"a bearer token is required: set {TOKEN_ENV}")
    for sub in ("uploads", "outputs"):
        (config.data_dir / sub).mkdir(parents=True, exist_ok=True)
    service = Service(config, pipeline_factory)
    app = FastAPI(title="cinectrl serve", version="2", lifespan=service.lifespan,
                  description="Photographic video edits with a CineCtrl model. Every route but /health needs "
                              f"`Authorization: Bearer <token>` (the server reads it from ${TOKEN_ENV}). The output "
                              "has the input's frame count and size; a clip that cannot be edited whole is refused "
                              "when submitted, with the reason.")
    _add_error_handlers(app)
    authorised = _bearer_dependency(config.token)
    _add_submit_route(app, service, authorised)
    _add_job_routes(app, service, authorised)
    return RequestGuard(app, token=config.token, public=PUBLIC_PATHS,
                        body_limits={("POST", "/jobs"): config.max_body_bytes})


class Service:
    """What the routes share: the config, the job queue and its workers (started and stopped by the lifespan),
    and the planner of the first worker's editor."""

    def __init__(self, config: ServeConfig, pipeline_factory: Callable[[str], EditPipeline]) -> None:
        self.config, self.pipeline_factory = config, pipeline_factory
        self.state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(self, app: FastAPI):
        queue = JobQueue(self.config.data_dir / "jobs.db")
        recovered = queue.recover()
        if any(recovered.values()):
            log.warning("recovered jobs after restart: %s", recovered)
        wake, stop = threading.Event(), threading.Event()
        workers = [Worker(d, queue, self.pipeline_factory(d), self.config, wake, stop) for d in self.config.devices]
        for w in workers:
            w.start()
        self.state.update(queue=queue, wake=wake, stop=stop, workers=workers, planner=workers[0].pipeline.plan,
                          started=time.time())
        try:
            yield
        finally:
            stop.set(), wake.set()
            for w in workers:
                w.join(timeout=30)
            queue.close()

    @property
    def queue(self) -> JobQueue:
        return self.state["queue"]

    def status_of(self, job: dict[str, Any], request: Request) -> JobStatus:
        eta = None
        if job["status"] == "running" and job["started_at"] and job["progress"] > 0:
            elapsed = time.time() - job["started_at"]
            eta = elapsed * (1 - job["progress"]) / job["progress"]
        url = str(request.url_for("download", job_id=job["id"])) if job["status"] == "succeeded" else None
        return JobStatus(id=job["id"], status=job["status"], progress=job["progress"], eta_s=eta,
                         source=job["source"], controls=job["controls"], camera_path=job["camera_path"],
                         prompt=job["prompt"], plan=job["plan"], result=job["result"], error=job["error"],
                         output_url=url, device=job["device"])

    def job_or_404(self, job_id: str) -> dict[str, Any]:
        if not JOB_ID.match(job_id):
            raise HTTPException(404, f"no job {job_id[:64]!r}: ids are 32 lowercase hex characters")
        job = self.queue.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return job

    async def submit(self, request: Request) -> JobStatus:
        """Stream the form to disk within the limits, then accept it (the upload removed when refused)."""
        job_id, config = secrets.token_hex(16), self.config
        try:
            form = await read_form(request.stream(), request.headers.get("content-type", ""), file_field="file",
                                   allowed=FORM_FIELDS, max_file_bytes=config.max_upload_bytes,
                                   max_field_bytes=MAX_FIELD_BYTES, max_body_bytes=config.max_body_bytes,
                                   file_path=lambda ctype, name: self.upload_path(job_id, ctype, name))
        except BodyError as exc:
            raise HTTPException(exc.status, exc.detail, headers={"Connection": "close"}) from None
        try:
            return self.accept(job_id, form, request)
        except BaseException:
            if form.file is not None:
                form.file.unlink(missing_ok=True)
            raise

    def accept(self, job_id: str, form, request: Request) -> JobStatus:
        controls = _parse_controls(form.fields.get("controls", "{}"))
        try:
            path_spec = CP.parse(form.fields.get("camera_path"))
        except CP.CameraPathError as exc:
            raise HTTPException(422, f"camera_path: {exc}") from None
        prompt = form.fields.get("prompt")
        if prompt is not None and len(prompt) > MAX_PROMPT_CHARS:
            raise HTTPException(422, f"prompt has {len(prompt)} characters; at most {MAX_PROMPT_CHARS}")
        clip_id = _parse_clip_id(form.fields.get("clip_id"))
        if (form.file is None) == (clip_id is None):
            raise HTTPException(422, "give exactly one of: an uploaded 'file', or a catalog 'clip_id'")
        if form.file is not None:
            if form.file_bytes == 0:
                raise HTTPException(422, "the uploaded file is empty")
            path, source = form.file, "upload"
        else:
            path, source = self.catalog_clip(clip_id), f"catalog:{clip_id}"
        plan = self.plan(path)
        self.queue.submit(input_path=path, controls=controls, source=source, job_id=job_id,
                          camera_path=None if path_spec is None else path_spec.raw, prompt=prompt,
                          plan=plan.to_dict())
        self.state["wake"].set()
        return self.status_of(self.queue.get(job_id), request)

    def upload_path(self, job_id: str, ctype: str, filename: str | None) -> Path:
        suffix = Path(filename or "").suffix.lower()
        if ctype in ("application/octet-stream", "") and suffix in VIDEO_TYPES.values():
            # curl -F file=@clip.mp4 sends octet-stream: trust a video extension, the probe decides
            ctype = next(t for t, ext in VIDEO_TYPES.items() if ext == suffix)
        if ctype not in VIDEO_TYPES:
            raise BodyError(415, f"content type {ctype or 'none'!r} is not a video; send one of "
                                 f"{', '.join(sorted(VIDEO_TYPES))}")
        return self.config.data_dir / "uploads" / f"{job_id}{VIDEO_TYPES[ctype]}"    # never the client's filename

    def catalog_clip(self, clip_id: int) -> Path:
        if self.config.catalog is None:
            raise HTTPException(422, "this server has no catalog (start it with --catalog) — upload the clip")
        from capture.catalog import open_catalog
        with open_catalog(self.config.catalog, readonly=True) as cat:
            rows = cat.rows("SELECT a.path FROM clips c JOIN assets a ON a.id = c.asset_id WHERE c.id = ?",
                            (clip_id,))
            if not rows:
                raise HTTPException(404, f"no clip {clip_id} with a video file in the catalog")
            path = Path(cat.abspath(rows[0]["path"]))
        if not path.is_file():
            raise HTTPException(404, f"catalog clip {clip_id}: its file is missing on the server")
        return path

    def plan(self, path: Path) -> EditPlan:
        """Checks from the container's header, then the model's own plan: refused here, before any work."""
        config = self.config
        try:
            info = probe(path)
        except VideoError:
            raise HTTPException(422, "the clip is not a decodable video") from None
        if info.codec not in config.allowed_codecs:
            raise HTTPException(415, f"codec {info.codec!r} not accepted; use one of "
                                     f"{', '.join(sorted(config.allowed_codecs))}")
        if info.duration_s > config.max_duration_s:
            raise HTTPException(413, f"clip lasts {info.duration_s:.1f} s; the limit is {config.max_duration_s} s")
        if info.frames > config.max_frames:
            raise HTTPException(413, f"clip has {info.frames} frames; the limit is {config.max_frames}")
        try:
            return self.state["planner"](info.frames, info.height, info.width)
        except EditRefused as exc:
            raise HTTPException(422, f"cannot edit this clip: {exc}") from None


def _bearer_dependency(token: str) -> Callable[..., None]:
    """The bearer check as a FastAPI dependency: the guard in front already refused a wrong token; this declares
    the scheme in the OpenAPI document."""
    bearer = HTTPBearer(auto_error=False)

    def authorised(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if creds is None or not secrets.compare_digest(creds.credentials.encode(), token.encode()):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})
    return authorised


def _add_error_handlers(app: FastAPI) -> None:
    """Every error is `{"detail": "one line"}`, validation errors included."""
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _one_line(exc.errors())}, status_code=422)


def _add_submit_route(app: FastAPI, service: Service, authorised: Callable[..., None]) -> None:
    @app.get("/health", response_model=Health)
    def health() -> Health:
        return Health(ok=True, devices=service.config.devices)

    @app.post("/jobs", status_code=202, response_model=JobStatus, dependencies=[Depends(authorised)],
              responses=_errors(400, 401, 404, 413, 415, 422), openapi_extra={"requestBody": _form_schema()})
    async def submit(request: Request) -> JobStatus:
        """Submit an edit: `file` (upload) or `clip_id` (catalog clip), `controls`, optional `camera_path` and
        `prompt`, as multipart/form-data. 202 with the job's status, including how the clip will be edited."""
        return await service.submit(request)


def _add_job_routes(app: FastAPI, service: Service, authorised: Callable[..., None]) -> None:
    @app.get("/jobs/{job_id}", response_model=JobStatus, dependencies=[Depends(authorised)],
             responses=_errors(401, 404, 422))
    async def status(job_id: str, request: Request,
                     wait: float = Query(0, ge=0, le=60, description="long poll: return as soon as the job "
                                                                      "ends, or after this many seconds")
                     ) -> JobStatus:
        job = service.job_or_404(job_id)
        if wait > 0 and job["status"] not in ("succeeded", "failed", "cancelled"):
            job = await run_in_threadpool(service.queue.wait_final, job_id, wait)
        return service.status_of(job, request)

    @app.get("/jobs/{job_id}/result", name="download", dependencies=[Depends(authorised)],
             response_class=FileResponse,
             responses={200: {"content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}},
                              "description": "the edited clip"}, **_errors(401, 404, 409, 410)})
    def download(job_id: str):
        job = service.job_or_404(job_id)
        if job["status"] != "succeeded":
            raise HTTPException(409, f"job {job_id} is {job['status']}; the result exists once it has succeeded")
        path = Path(job["output_path"])
        if not path.is_file():
            raise HTTPException(410, f"job {job_id}: the result file was removed from the server")
        return FileResponse(path, media_type="video/mp4", filename=f"cinectrl-{job_id}.mp4")

    @app.post("/jobs/{job_id}/cancel", response_model=JobStatus, dependencies=[Depends(authorised)],
              responses=_errors(401, 404, 409))
    def cancel(job_id: str, request: Request) -> JobStatus:
        job = service.job_or_404(job_id)
        if job["status"] in ("succeeded", "failed", "cancelled"):
            raise HTTPException(409, f"job {job_id} already {job['status']}")
        service.queue.cancel(job_id)
        return service.status_of(service.queue.get(job_id), request)


def _parse_controls(text: str) -> dict[str, float]:
    try:
        return Controls.model_validate_json(text or "{}").model_dump()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'controls'}: {e['msg']}" for e in exc.errors())
        raise HTTPException(422, f"bad controls {text[:200]!r}: {problems}") from None


def _parse_clip_id(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = int(text.strip())
    except ValueError:
        raise HTTPException(422, f"clip_id {text[:40]!r} is not an integer") from None
    if value < 1:
        raise HTTPException(404, f"no clip {value}: catalog clip ids start at 1")
    return value


def _one_line(errors: list[dict[str, Any]]) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'request'}: {e.get('msg')}"
                     for e in errors)[:500]


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


def run_server(app: Any, host: str, port: int, *, log_level: str = "info") -> None:
    import uvicorn
    sock = bind_socket(host, port)
    log.warning("cinectrl serve listening on http://%s:%d (docs at /docs)", host, sock.getsockname()[1])
    uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on")).run(sockets=[sock])

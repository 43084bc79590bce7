"""Control accuracy, disentanglement and camera-path accuracy of a video editor on captured sweeps.

An *editor* is any callable `(frames uint8 (T,H,W,3), controls {name: value}, *, camera_path=None,
depth=None) -> frames`: a fine-tuned model, the identity baseline or the effect simulator. A *sweep* is a
series of clips of one scene along one camera path in which exactly one control varies (the others may sit
anywhere, as long as they are the same for every member); its source is the session's reference clip. The
controls and their statistics come from the registry (rigs/controls.py); the camera path is swept by
offsetting passes along the slider and measured as an image translation.

Per sweep and method: the statistic of every member (captured) and of the editor's output for the member's
controls; CorrCoef (Pearson r of first differences, as GenPhoto/CineCtrl), the response slope ratio
(generated change / captured change: CorrCoef cannot see amplitude), absolute error of the statistic,
PSNR/SSIM to the captured member, and one row of the disentanglement matrix (|r| between the swept value and
every statistic of the output, with an amplitude-aware leakage beside it). A method that cannot make an
effect (the simulator has no camera path) is skipped for it with the reason; the simulator is only ever
scored against captured sweeps.
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from rigs import controls as registry
from rigs import statistics as S

from . import metrics as M

log = logging.getLogger(__name__)

Editor = Callable[..., np.ndarray]
CAMERA_PATH = S.CAMERA_PATH
#: every swept axis: the registry's controls, then the camera path
AXES: tuple[str, ...] = registry.NAMES + (CAMERA_PATH,)
#: statistic of each axis (the disentanglement matrix's columns, in this order)
AXIS_STATISTIC: dict[str, str] = {**S.CONTROL_STATISTIC, CAMERA_PATH: S.PATH_STATISTIC}
SWEEP_TOLERANCE = 0.06      # two members' other controls "agree" within this (normalised units): a camera's
                            # 1/3-stop grid leaves a compensated exposure up to 1/6 stop (S 0.056) off
FOCUS_SWEEP_MIN_K = 0.2     # a focus series at smaller K is no focus sweep: its largest blur radius stays under
                            # ~1 px at the 96 px evaluation width (the lab day's deep-focus f/16 series)
PATH_TOLERANCE_MM = 5.0     # ... and their camera paths within this (pass start jitter at a scaled-up sim speed)


class CannotEdit(Exception):
    """A method cannot make this edit (e.g. the simulator and a camera path); the sweep is skipped for it."""


@dataclass
class Member:
    value: float                          # the swept axis's value
    controls: dict[str, float]            # every control of this member
    clip: np.ndarray                      # captured clip (T, H, W, 3)
    offset_mm: float = 0.0                # camera path: offset of this member's pass against the source's
    label: str = ""


@dataclass
class Sweep:
    axis: str                             # a registry control or CAMERA_PATH
    source: np.ndarray                    # the reference clip, (T, H, W, 3) uint8
    members: list[Member]                 # sorted by value; the source's own member included
    depth: np.ndarray | None = None       # true depth of the source (metres), (T, H, W)
    scene: str = ""
    session: str = ""
    reference_kind: str = "captured"      # "captured" | "simulated"
    pixel_area: float = 1.0               # pixels of the captured clip one pixel here averages (resized: >1)
    focus: float | None = None            # the reference's d_f: where the sharpness mask is cut, for every member
    cache: dict = field(default_factory=dict, repr=False, compare=False)   # captured members' statistics

    @property
    def values(self) -> list[float]:
        return [m.value for m in self.members]

    def context(self, member: Member | None = None) -> S.Context:
        """One context for every member: the sharpness mask is fixed per sweep (from the reference's focus
        plane), so a focus sweep does not move the region bokeh is measured in (which read as bokeh leakage)."""
        focus = self.focus if self.focus is not None else float(np.median([m.controls.get("d_f", 0.5)
                                                                            for m in self.members]))
        return S.Context(source=self.source, depth=self.depth, focus=focus)

    def viewed(self, view: Callable[[np.ndarray], np.ndarray] | None) -> "Sweep":
        """The sweep's clips as `view` shows them (None: as they are)."""
        if view is None:
            return self
        members = [Member(m.value, m.controls, view(m.clip), m.offset_mm, m.label) for m in self.members]
        return Sweep(self.axis, view(self.source), members, self.depth, self.scene, self.session,
                     self.reference_kind, self.pixel_area, self.focus)

    def fitted(self, size: tuple[int, int] | None) -> "Sweep":
        """The sweep as a model of (H, W) sees its content: `rigs.video.fit_frames` (the one fit training data
        and the editor use) without the padding, so every method is measured at the resolution the model works
        at. The methods themselves edit the clips at their captured size, as `train edit` and `serve` do."""
        if size is None:
            return self
        from rigs.video import fit_content, fit_frames
        members = [Member(m.value, m.controls, fit_content(m.clip, size), m.offset_mm, m.label) for m in self.members]
        depth = None
        if self.depth is not None:
            fitted, fit = fit_frames(self.depth, size, nearest=True)
            depth = fit.content(fitted)
        src_h, src_w = self.source.shape[1:3]
        area = self.pixel_area * min(size[0] / src_h, size[1] / src_w) ** -2    # the fit's one scale factor
        return Sweep(self.axis, fit_content(self.source, size), members, depth, self.scene, self.session,
                     self.reference_kind, area, self.focus)


# ------------------------------------------------------------------------------------------------ sweeps

def find_series(members: Sequence[Mapping[str, float]], axis: str, *, tolerance: float = SWEEP_TOLERANCE
                ) -> list[list[int]]:
    """Index lists of members in which only `axis` varies: every other control agrees with the series' first
    member within `tolerance` (the camera path within PATH_TOLERANCE_MM), with at least three distinct values
    of `axis`, sorted by it."""
    def value(m: Mapping[str, float], name: str) -> float:
        return float(m.get(name, registry.NEUTRAL.get(name, 0.0)))

    def agree(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
        return all(abs(value(a, n) - value(b, n)) <= (PATH_TOLERANCE_MM if n == CAMERA_PATH else tolerance)
                   for n in AXES if n != axis)

    groups: list[list[int]] = []
    for i, m in enumerate(members):
        for group in groups:
            if agree(members[group[0]], m):
                group.append(i)
                break
        else:
            groups.append([i])
    out = []
    for idx in groups:
        if axis == "d_f" and value(members[idx[0]], "K") < FOCUS_SWEEP_MIN_K:
            continue                      # nothing is out of focus: the focus plane cannot show
        if len({round(value(members[i], axis), 4) for i in idx}) >= 3:
            out.append(sorted(idx, key=lambda i: value(members[i], axis)))
    return out


def captured_sweeps(catalog: Any, *, scenes: Iterable[str] | None = None, max_frames: int = 17,
                    train_ready_only: bool = False) -> list[Sweep]:
    """Every captured sweep in the catalog (optionally only `scenes`): per session and reference clip, the
    reference plus its pairs, split into series in which exactly one axis varies."""
    from .data import clip_depth, pair_members
    from rigs.video import VideoError, read_video
    wanted = set(scenes) if scenes is not None else None
    sweeps: list[Sweep] = []
    for group in pair_members(catalog, train_ready_only=train_ready_only):
        if wanted is not None and group["scene"] not in wanted:
            continue
        members = group["members"]
        cache: dict[str, np.ndarray] = {}

        def clip(path: str) -> np.ndarray:
            if path not in cache:
                cache[path] = read_video(path, max_frames=max_frames)[0]
            return cache[path]

        for axis in AXES:
            for idx in find_series(members, axis):
                try:
                    source = clip(group["reference_path"])
                    chosen = [Member(float(members[i][axis]), {k: float(members[i][k]) for k in registry.NAMES},
                                     clip(members[i]["path"]), float(members[i].get(CAMERA_PATH, 0.0)),
                                     members[i].get("label", "")) for i in idx]
                except (VideoError, OSError) as exc:
                    log.warning("sweep of %s in %s skipped: %s", axis, group["session"], exc)
                    continue
                n = min(len(source), *(len(m.clip) for m in chosen))
                for m in chosen:
                    m.clip = m.clip[:n]
                depth = clip_depth(group["reference_path"])
                sweeps.append(Sweep(axis, source[:n], chosen, None if depth is None else depth[:n],
                                    group["scene"], group["session"], "captured",
                                    focus=float(members[0].get("d_f", registry.NEUTRAL["d_f"]))))
    return sweeps


#: a simulated focus sweep needs blur to show: it sweeps d_f at this K
SIMULATED_BASE: dict[str, dict[str, float]] = {"d_f": {"K": 0.6}}


def simulated_values(axis: str, count: int = 5) -> list[float]:
    """`count` values evenly across the registry's range of `axis`."""
    c = registry.spec(axis)
    return [float(v) for v in np.linspace(c.low, c.high, count)]


def simulated_sweeps(sources: Iterable[tuple[str, np.ndarray, np.ndarray | None]], simulate: Editor,
                     values: Mapping[str, Sequence[float]]) -> list[Sweep]:
    """Sweeps made by the effect simulator from (scene, clip, depth) sources, for axes nobody captured. The
    simulator baseline is never scored against these (it would be grading itself)."""
    out = []
    for scene, source, depth in sources:
        for axis, vals in values.items():
            members = []
            try:
                for v in vals:
                    controls = {**registry.NEUTRAL, **SIMULATED_BASE.get(axis, {}), axis: float(v)}
                    members.append(Member(float(v), controls, simulate(source, controls, depth=depth)))
            except (ValueError, CannotEdit) as exc:   # e.g. bokeh for a clip without depth: say why
                log.warning("no simulated %s sweep for %s: %s", axis, scene, exc)
                continue
            out.append(Sweep(axis, source, members, depth, scene, scene, "simulated"))
    return out


# ------------------------------------------------------------------------------------------------ baselines

def identity(frames: np.ndarray, controls: Mapping[str, float], **_: Any) -> np.ndarray:
    """The do-nothing baseline: every edit returns the source."""
    return frames


def simulator_editor(simulate: Callable[..., np.ndarray] | None = None) -> Editor:
    """The effect simulator as an editor (bokeh and focus from the source's true depth); it cannot move the
    camera, so a camera-path edit raises CannotEdit. `pixel_area` (captured pixels per pixel of `frames`) lets
    its sensor noise shrink with the clip as the captured noise does."""
    if simulate is None:
        from .effects import simulate_uint8 as simulate

    def edit(frames: np.ndarray, controls: Mapping[str, float], *, camera_path: Any = None,
             depth: np.ndarray | None = None, pixel_area: float = 1.0) -> np.ndarray:
        if camera_path is not None:
            raise CannotEdit("the effect simulator cannot move the camera along another path")
        disparity = None
        if depth is not None:
            maps = np.asarray(depth, np.float32)[: len(frames)]
            if maps.shape[1:3] != frames.shape[1:3]:
                import cv2
                maps = np.stack([cv2.resize(d, (frames.shape[2], frames.shape[1]), interpolation=cv2.INTER_NEAREST)
                                 for d in maps])
            disparity = S.disparity(maps)
        elif controls.get("K", 0.0) > 0:
            raise CannotEdit("bokeh needs the source's depth, and this sweep has none")
        return simulate(frames, dict(controls), disparity=disparity, pixel_area=pixel_area)

    return edit


# ------------------------------------------------------------------------------------------------ scoring

def _statistic(name: str, clips: Sequence[np.ndarray], sweep: Sweep) -> list[float]:
    return [S.measure(name, c, sweep.context(m)) for c, m in zip(clips, sweep.members)]


def _captured(name: str, sweep: Sweep) -> list[float]:
    """A statistic of the captured members, measured once per sweep."""
    if name not in sweep.cache:
        sweep.cache[name] = _statistic(name, [m.clip for m in sweep.members], sweep)
    return sweep.cache[name]


def _undefined_reason(name: str, sweep: Sweep) -> str | None:
    return S.can_measure(name, S.Context(source=sweep.source, depth=sweep.depth))


def score_sweep(sweep: Sweep, outputs: Sequence[np.ndarray], yardstick: Mapping[str, float] | None = None
                ) -> dict[str, Any]:
    """Every figure of one method on one sweep; `yardstick` (captured_response) turns each other statistic's
    change into leakage."""
    stat = AXIS_STATISTIC[sweep.axis]
    values = sweep.values
    captured = [m.clip for m in sweep.members]
    ref = _captured(stat, sweep)
    gen = _statistic(stat, outputs, sweep)
    corr = M.first_differences_corr(ref, gen)
    constant = M.pearson(values, gen) is None
    result: dict[str, Any] = {
        "axis": sweep.axis, "statistic": stat, "scene": sweep.scene, "session": sweep.session,
        "values": values, "reference_statistic": ref, "generated_statistic": gen,
        # a constant output (identity) has no defined r: it tracks nothing, so it scores 0 and says why
        "corrcoef": corr if corr is not None else 0.0,
        "corrcoef_note": None if corr is not None else ("output does not change along the sweep" if constant
                                                        else "captured statistic does not change"),
        "slope_ratio": M.slope_ratio(values, ref, gen),
        "abs_error": float(np.mean(np.abs(np.asarray(ref) - np.asarray(gen)))),
        "psnr_target": float(np.mean([M.clip_psnr(c, o) for c, o in zip(captured, outputs)])),
        "ssim_target": float(np.mean([M.clip_ssim(c, o) for c, o in zip(captured, outputs)])),
        "psnr_source": float(np.mean([M.clip_psnr(sweep.source[:len(o)], o) for o in outputs])),
    }
    if sweep.axis == CAMERA_PATH:
        result["path_error_px"] = result["abs_error"]
    # one row of the disentanglement matrix: |r| of the swept value against every statistic of the output
    row, leakage, responses = {}, {}, {}
    for name in dict.fromkeys(AXIS_STATISTIC.values()):
        if _undefined_reason(name, sweep):
            continue
        series = gen if name == stat else _statistic(name, outputs, sweep)
        r = M.pearson(values, series)
        row[name] = 0.0 if r is None else abs(r)
        responses[name] = float(max(series) - min(series))
        if name != stat and yardstick is not None:
            leak = M.leakage(series, _captured(name, sweep), yardstick.get(name))
            if leak is not None:
                leakage[name] = leak
    result["disentanglement"] = row
    result["response_range"] = responses
    result["leakage"] = leakage
    return result


def captured_response(sweeps: Sequence[Sweep]) -> dict[str, float]:
    """Typical full-sweep change of each statistic along its own axis in the captured sweeps: the yardstick
    that turns an off-diagonal change into a fraction of a real effect (leakage)."""
    spans: dict[str, list[float]] = {}
    for sweep in sweeps:
        if sweep.reference_kind != "captured":
            continue
        stat = AXIS_STATISTIC[sweep.axis]
        series = _captured(stat, sweep)
        spans.setdefault(stat, []).append(float(max(series) - min(series)))
    return {k: float(np.median(v)) for k, v in spans.items() if v}


def evaluate(sweeps: Sequence[Sweep], methods: Mapping[str, Editor], *,
             simulator_methods: Iterable[str] = ("simulator",),
             view: Callable[[np.ndarray], np.ndarray] | None = None,
             held_out: Mapping[str, Iterable[str] | None] | None = None,
             trained_on_ok: bool = False, size: tuple[int, int] | None = None) -> dict[str, Any]:
    """Every figure for every method; per axis the means over its sweeps. Methods edit each sweep's clips at
    their captured size (a model through its `ClipEditor`, the path `train edit` and `serve` take); with `size`
    (the model's (H, W)) every clip and output is then measured as the model sees it (`Sweep.fitted`). `view`
    maps every clip before it is measured (train/calibrated.py: a calibrated camera's linear space); methods
    still edit the body's frames. `held_out[method]`: the scenes that model never trained on (None: unknown). A
    model is scored only on its own held-out scenes; with `trained_on_ok` (`--all-scenes`) it is also scored on
    the others, and each such sweep and the per-axis summary say so (`trained_on`)."""
    lpips_model, lpips_note = M.lpips_status()
    measured = [s.fitted(size).viewed(view) for s in sweeps]
    if size is not None:
        from rigs.video import fit_content
        fit_out = lambda clip: fit_content(clip, size)  # noqa: E731
    else:
        fit_out = lambda clip: clip  # noqa: E731
    yardstick = captured_response(measured)
    result: dict[str, Any] = {
        "axes": list(AXES), "statistics": dict(AXIS_STATISTIC), "notes": [lpips_note], "methods": {},
        "captured_response": yardstick,
        "sweeps": [{"axis": s.axis, "scene": s.scene, "session": s.session, "values": s.values,
                    "reference_kind": s.reference_kind} for s in sweeps]}
    captured_rows = [score_sweep(s, [m.clip for m in s.members], yardstick) for s in measured]
    result["captured_disentanglement"] = _matrix(captured_rows, yardstick)["disentanglement"]
    simulators = set(simulator_methods)
    for name, editor in methods.items():
        details, skipped = [], []
        allowed = None if held_out is None or name not in held_out else held_out[name]
        for sweep, seen in zip(sweeps, measured):
            if name in simulators and sweep.reference_kind != "captured":
                skipped.append({"axis": sweep.axis, "scene": sweep.scene, "why": "simulated sweep"})
                continue
            trained_on = held_out is not None and name in held_out and (allowed is None or sweep.scene not in allowed)
            if trained_on and not trained_on_ok:
                skipped.append({"axis": sweep.axis, "scene": sweep.scene,
                                "why": f"{name} trained on scene {sweep.scene}" if allowed is not None else
                                f"{name} does not say which scenes it held out"})
                continue
            try:
                extra = {"pixel_area": sweep.pixel_area} if name in simulators else {}
                outputs = [fit_out(_like(np.asarray(editor(sweep.source, m.controls,
                                                           camera_path=_camera_path(sweep, m), depth=sweep.depth,
                                                           **extra)), sweep.source.shape))
                           for m in sweep.members]
            except CannotEdit as exc:
                skipped.append({"axis": sweep.axis, "scene": sweep.scene, "why": str(exc)})
                continue
            details.append({**score_sweep(seen, [view(o) for o in outputs] if view is not None else outputs,
                                          yardstick), "trained_on": trained_on})
        matrix = _matrix(details, yardstick)
        worst = M.leakage_max(matrix["leakage"], AXIS_STATISTIC)
        shifts = neutral_translation(editor, sweeps)
        result["methods"][name] = {
            "axes": _summary(details), **matrix, "sweeps": details, "skipped": skipped,
            "leakage_max": None if worst is None else {"value": worst[0], "where": worst[1],
                                                       "limit": M.LEAKAGE_LIMIT, "met": worst[0] <= M.LEAKAGE_LIMIT},
            "neutral_translation_px": None if not shifts else {
                "max": max(shifts), "mean": float(np.mean(shifts)), "limit": M.NEUTRAL_TRANSLATION_LIMIT_PX,
                "met": max(shifts) <= M.NEUTRAL_TRANSLATION_LIMIT_PX}}
    return result


def neutral_translation(editor: Editor, sweeps: Sequence[Sweep]) -> list[float]:
    """|translation| (px) of a neutral-controls edit of each captured sweep's source against that source: an
    edit that changes no control must keep the camera path (one edit per distinct source)."""
    out, seen = [], set()
    for sweep in sweeps:
        if sweep.reference_kind != "captured" or id(sweep.source) in seen:
            continue
        seen.add(id(sweep.source))
        try:
            edited = _like(np.asarray(editor(sweep.source, dict(registry.NEUTRAL), camera_path=None,
                                             depth=sweep.depth)), sweep.source.shape)
        except CannotEdit:
            continue
        out.append(abs(S.measure(S.PATH_STATISTIC, edited, S.Context(source=sweep.source))))
    return out


def build_sweeps(catalog_path: str | Path | None = None, *, scenes: Iterable[str] | None = None,
                 sources: Sequence[str | Path] = (), max_frames: int = 17, size: tuple[int, int] | None = None
                 ) -> tuple[list[Sweep], list[str]]:
    """Captured sweeps from a catalog (only `scenes` when given), plus simulated sweeps from `sources` clips
    for the axes no captured sweep covers. Returns the sweeps and notes saying what was used."""
    from .data import clip_depth
    from rigs.video import VideoError, read_video
    notes: list[str] = []
    sweeps: list[Sweep] = []
    if catalog_path is not None:
        from capture.catalog import open_catalog
        with open_catalog(catalog_path, readonly=True) as cat:
            sweeps += captured_sweeps(cat, scenes=scenes, max_frames=max_frames)
        where = f"held-out scenes {', '.join(sorted(scenes))}" if scenes is not None else "all scenes"
        notes.append(f"{len(sweeps)} captured sweep(s) from {catalog_path} ({where})")
    missing = [a for a in registry.NAMES if a not in {s.axis for s in sweeps}]
    clips = []
    for p in sources:
        try:
            clips.append((Path(p).stem, read_video(p, max_frames=max_frames)[0], clip_depth(p)))
        except VideoError as exc:
            notes.append(f"source {p} skipped: {exc}")
    if clips and missing:
        made = simulated_sweeps(clips, simulator_editor(), {a: simulated_values(a) for a in missing})
        sweeps += made
        notes.append(f"{len(made)} simulated sweep(s) for axes without a captured one ({', '.join(missing)}); "
                     "the simulator baseline is not scored on them")
    if missing and not clips:
        notes.append(f"no sweep of {', '.join(missing)}: nothing captured them")
    if size is not None:
        notes.append(f"edited at the captured size through each model's editor (as `train edit` and `serve`); "
                     f"measured as a {size[0]}x{size[1]} model sees the clips (rigs.video.fit_frames: aspect kept, "
                     "padding left out)")
    return sweeps, notes


def _camera_path(sweep: Sweep, member: Member) -> Any:
    """A camera-path sweep asks for its member's slider offset (train.camera_path, as `train edit` takes it);
    every other sweep keeps the source's path (the few millimetres between passes are pass timing, not an
    edit)."""
    if sweep.axis != CAMERA_PATH or abs(member.offset_mm) < 1e-9:
        return None
    from .camera_path import parse
    return parse({"slider_mm": [member.offset_mm]})


def _summary(details: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for axis in AXES:
        rows = [d for d in details if d["axis"] == axis]
        if not rows:
            continue
        ratios = [d["slope_ratio"] for d in rows if d["slope_ratio"] is not None]
        out[axis] = {
            "statistic": AXIS_STATISTIC[axis], "sweeps": len(rows),
            "points": sorted(len(d["values"]) for d in rows),          # sweep sizes: r of n-1 differences
            "on_training_scenes": sum(bool(d.get("trained_on")) for d in rows),
            "corrcoef": float(np.mean([d["corrcoef"] for d in rows])),
            "corrcoef_undefined": sum(d["corrcoef_note"] is not None for d in rows),
            "slope_ratio": float(np.median(ratios)) if ratios else None,
            "abs_error": float(np.mean([d["abs_error"] for d in rows])),
            "psnr_target": float(np.mean([d["psnr_target"] for d in rows])),
            "ssim_target": float(np.mean([d["ssim_target"] for d in rows])),
            "psnr_source": float(np.mean([d["psnr_source"] for d in rows])),
        }
    return out


def _matrix(details: Sequence[Mapping[str, Any]], yardstick: Mapping[str, float]) -> dict[str, Any]:
    """Rows: swept axes; columns: statistics. abs_r: mean |r|; leakage: mean `metrics.leakage` over the axis's
    sweeps (the output's change of another statistic beyond the captured sweep's own, as a fraction of that
    statistic's typical captured full-sweep change; the diagonal is left out)."""
    abs_r: dict[str, dict[str, float]] = {}
    leakage: dict[str, dict[str, float]] = {}
    for axis in AXES:
        rows = [d for d in details if d["axis"] == axis]
        if not rows:
            continue
        stats = sorted({s for d in rows for s in d["disentanglement"]}, key=list(AXIS_STATISTIC.values()).index)
        abs_r[axis] = {s: float(np.mean([d["disentanglement"][s] for d in rows if s in d["disentanglement"]]))
                       for s in stats}
        leakage[axis] = {s: float(np.mean([d["leakage"][s] for d in rows if s in d.get("leakage", {})]))
                         for s in stats if any(s in d.get("leakage", {}) for d in rows)}
    return {"disentanglement": abs_r, "leakage": leakage}


def off_diagonal_max(matrix: Mapping[str, Mapping[str, float]]) -> float | None:
    """The largest |r| of a statistic that belongs to another axis than the one swept."""
    values = [v for axis, row in matrix.items() for stat, v in row.items() if stat != AXIS_STATISTIC[axis]]
    return max(values) if values else None


def _like(clip: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """First `shape[0]` frames at shape's (H, W): an editor that works at its own resolution is compared at
    the captured clip's."""
    from rigs.video import resize_frames
    return resize_frames(np.asarray(clip)[: shape[0]], *shape[1:3])


# ------------------------------------------------------------------------------------------------ report

def write_report(result: Mapping[str, Any], out_dir: str | Path, *, title: str = "cinectrl evaluation") -> dict:
    """metrics.json (every figure), report.md, report.html and PNG plots; returns their paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result, indent=2, default=_json_default))
    plots = []
    methods = list(result["methods"])
    for axis in AXES:
        firsts = {m: next((s for s in result["methods"][m]["sweeps"] if s["axis"] == axis), None) for m in methods}
        firsts = {m: s for m, s in firsts.items() if s is not None}
        if not firsts:
            continue
        fig, ax = plt.subplots(figsize=(5, 3.2))
        any_sweep = next(iter(firsts.values()))
        ax.plot(any_sweep["values"], any_sweep["reference_statistic"], "k--o", label="captured")
        for method, sweep in firsts.items():
            ax.plot(sweep["values"], sweep["generated_statistic"], marker="o", label=method)
        ax.set_title(f"{axis}: {AXIS_STATISTIC[axis]} along the sweep ({any_sweep['scene']})", fontsize=9)
        ax.set_xlabel(axis)
        ax.legend(fontsize=7)
        path = out / f"sweep_{axis}.png"
        fig.tight_layout(), fig.savefig(path, dpi=90), plt.close(fig)
        plots.append(path.name)
    for method in methods:
        path = _heatmap(result["methods"][method]["disentanglement"], f"disentanglement |r| — {method}",
                        out / f"disentanglement_{method}.png", plt)
        if path:
            plots.append(path.name)
    md = _markdown(result, title, plots)
    (out / "report.md").write_text(md)
    (out / "report.html").write_text(_html(result, title, plots))
    return {"metrics": out / "metrics.json", "markdown": out / "report.md", "html": out / "report.html",
            "plots": [out / p for p in plots]}


def _heatmap(matrix: Mapping[str, Mapping[str, float]], title: str, path: Path, plt) -> Path | None:
    if not matrix:
        return None
    rows = list(matrix)
    cols = [s for s in dict.fromkeys(AXIS_STATISTIC.values()) if any(s in matrix[r] for r in rows)]
    data = np.array([[matrix[r].get(s, np.nan) for s in cols] for r in rows])
    fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(cols), 0.8 + 0.45 * len(rows)))
    ax.imshow(data, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(cols)), cols, rotation=30, fontsize=7)
    ax.set_yticks(range(len(rows)), [f"sweep {r}" for r in rows], fontsize=7)
    for (i, j), v in np.ndenumerate(data):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="w", fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout(), fig.savefig(path, dpi=90), plt.close(fig)
    return path


def _fmt(v: Any) -> str:
    return "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def sweep_sizes(summary: Mapping[str, Any]) -> str:
    """"n=3" or "n=3-6": the points per sweep a CorrCoef was computed from (3 points give r of 2 differences,
    which is +-1 by construction more often than not)."""
    points = summary.get("points") or []
    if not points:
        return "n=?"
    return f"n={points[0]}" if points[0] == points[-1] else f"n={points[0]}-{points[-1]}"


def corrcoef_cell(summary: Mapping[str, Any]) -> str:
    """CorrCoef with its sweep sizes, and a loud mark when any sweep is of a scene the model trained on."""
    cell = f"{_fmt(summary['corrcoef'])} ({sweep_sizes(summary)})"
    if summary.get("on_training_scenes"):
        cell += f" TRAINED-ON SCENES: {summary['on_training_scenes']} of {summary['sweeps']} sweep(s)"
    return cell


def table_rows(result: Mapping[str, Any]) -> list[list[str]]:
    rows = [["method", "axis", "statistic", "CorrCoef (points per sweep)", "slope ratio", "abs err", "PSNR tgt",
             "SSIM tgt", "sweeps"]]
    for method, data in result["methods"].items():
        for axis, s in data["axes"].items():
            rows.append([method, axis, s["statistic"], corrcoef_cell(s), _fmt(s["slope_ratio"]),
                         _fmt(s["abs_error"]), _fmt(s["psnr_target"]), _fmt(s["ssim_target"]),
                         f"{s['sweeps']}" + (f" ({s['corrcoef_undefined']} const.)" if s["corrcoef_undefined"] else "")])
    return rows


def _markdown(result: Mapping[str, Any], title: str, plots: list[str]) -> str:
    rows = table_rows(result)
    lines = [f"# {title}", "", "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    kinds = sorted({s["reference_kind"] for s in result["sweeps"]})
    lines += ["", f"Reference sweeps: {', '.join(kinds) or 'none'} ({len(result['sweeps'])}).", ""]
    for method, data in result["methods"].items():
        worst = off_diagonal_max(data["disentanglement"])
        leak, shift = data.get("leakage_max"), data.get("neutral_translation_px")
        lines.append(f"- {method}: largest leakage "
                     + (f"{leak['value']:.3f} ({leak['where']}; limit {leak['limit']})" if leak else "n/a")
                     + "; neutral edit translation "
                     + (f"{shift['max']:.2f} px (limit {shift['limit']})" if shift else "n/a")
                     + f"; largest off-diagonal |r| {_fmt(worst)}; "
                     f"skipped {len(data['skipped'])} sweep(s)"
                     + (f" ({data['skipped'][0]['why']})" if data["skipped"] else ""))
    lines += [f"- {n}" for n in result.get("notes", [])]
    lines += [""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def _html(result: Mapping[str, Any], title: str, plots: list[str]) -> str:
    rows = table_rows(result)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.get("notes", []))
    imgs = "".join(f'<img src="{html.escape(p)}" alt="{html.escape(p)}">' for p in plots)
    return (f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>"
            f"<table border=1 cellpadding=3><tr>{head}</tr>{body}</table><ul>{notes}</ul>{imgs}\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(type(obj))

"""Control accuracy, disentanglement and source consistency of a video editor, against baselines.

An *editor* is any callable `(frames uint8 (T,H,W,3), controls {K, d_f, f, S, T}) -> frames`: the fine-tuned
pipeline, the identity baseline, or the effect simulator. A *sweep* is one source clip edited at increasing
values of one control, with a reference clip per value — physically captured (from the catalog) where it
exists, simulated otherwise. Metrics follow GenPhoto/CineCtrl (Pearson r of first differences of a per-frame
statistic along the sweep) and add what their reviewers missed: absolute error against the reference,
a disentanglement matrix, PSNR/SSIM to the source (LPIPS only when its weights are already on disk).
"""

from __future__ import annotations

import html
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from rigs import controls as registry

from . import metrics as M

log = logging.getLogger(__name__)

Editor = Callable[[np.ndarray, Mapping[str, float]], np.ndarray]
CONTROLS = registry.NAMES
NEUTRAL = registry.NEUTRAL
# effect -> (swept control, statistic used for its CorrCoef)
EFFECTS: dict[str, tuple[str, str]] = {
    "bokeh": ("K", "sharpness"),
    "exposure": ("S", "brightness"),
    "colour_temperature": ("T", "channel_means"),
    "zoom": ("f", "zoom_scale"),
}


@dataclass
class Sweep:
    effect: str
    source: np.ndarray
    values: list[float]
    references: list[np.ndarray]
    reference_kind: str = "simulated"          # "captured" or "simulated"
    base_controls: dict[str, float] = field(default_factory=lambda: dict(NEUTRAL))
    scene: str = ""

    def controls(self, value: float) -> dict[str, float]:
        return {**self.base_controls, EFFECTS[self.effect][0]: float(value)}


# ------------------------------------------------------------------------------------------------ sweeps

def simulated_sweeps(sources: Iterable[tuple[str, np.ndarray]], simulate: Editor,
                     values: Mapping[str, Sequence[float]]) -> list[Sweep]:
    """Reference sweeps made by the effect simulator, for effects with no captured sweep."""
    out = []
    for scene, source in sources:
        for effect, vals in values.items():
            sweep = Sweep(effect, source, list(vals), [], "simulated", dict(NEUTRAL), scene)
            try:
                sweep.references = [simulate(source, sweep.controls(v)) for v in vals]
            except ValueError as exc:     # e.g. bokeh for a clip without depth: no reference, say why
                log.warning("no simulated %s sweep for %s: %s", effect, scene, exc)
                continue
            out.append(sweep)
    return out


def captured_sweeps(catalog: Any, *, max_frames: int = 33, train_ready_only: bool = False) -> list[Sweep]:
    """Physically captured sweeps: pairs sharing a reference clip whose controls differ from neutral in one
    effect's control only, ordered by that control. The reference clip itself is the sweep's first element."""
    from .videoio import VideoError, read_video
    groups: dict[tuple[int, int], list[dict]] = {}
    for pair in catalog.pairs(train_ready=True if train_ready_only else None):
        groups.setdefault((pair["session_id"], pair["reference_clip_id"]), []).append(pair)
    sweeps: list[Sweep] = []
    for (session_id, _), pairs in groups.items():
        for effect, (control, _) in EFFECTS.items():
            members = []
            for pair in pairs:
                controls = {k: float(v) for k, v in (pair["controls"] or {}).items()
                            if k in CONTROLS and isinstance(v, (int, float))}
                others = [k for k, v in controls.items() if k != control and abs(v - NEUTRAL[k]) > 1e-6]
                if control in controls and not others:
                    members.append((controls[control], pair))
            if len(members) < 2:
                continue
            members.sort(key=lambda m: m[0])
            try:
                source, _ = read_video(catalog.abspath(members[0][1]["reference_path"]), max_frames=max_frames)
                refs = [read_video(catalog.abspath(p["other_path"]), max_frames=max_frames)[0] for _, p in members]
            except (VideoError, TypeError):
                continue
            n = min(len(source), *(len(r) for r in refs))
            sweeps.append(Sweep(effect, source[:n], [NEUTRAL[control]] + [v for v, _ in members],
                                [source[:n]] + [r[:n] for r in refs], "captured", dict(NEUTRAL),
                                f"session-{session_id}"))
    return sweeps


# ------------------------------------------------------------------------------------------------ scoring

def _sweep_statistic(effect: str, clips: Sequence[np.ndarray]) -> np.ndarray:
    stat = EFFECTS[effect][1]
    if stat == "zoom_scale":
        return M.zoom_sequence(clips)
    return np.array([M.clip_statistic(stat, c) for c in clips], dtype=np.float64)


def control_accuracy(effect: str, reference: Sequence[np.ndarray], generated: Sequence[np.ndarray]
                     ) -> dict[str, Any]:
    """CorrCoef (None when undefined, e.g. a constant output) and mean absolute error of the statistic."""
    ref, gen = _sweep_statistic(effect, reference), _sweep_statistic(effect, generated)
    if effect == "zoom":   # GenPhoto correlates the consecutive-scale sequences themselves
        corr = M.pearson(ref, gen)
        err = float(np.nanmean(np.abs(ref - gen))) if np.isfinite(ref - gen).any() else None
    elif effect == "colour_temperature":
        per_channel = [M.first_differences_corr(ref[:, c], gen[:, c]) for c in range(3)]
        defined = [c for c in per_channel if c is not None]
        corr = float(np.mean(defined)) if defined else None
        err = float(np.mean(np.abs(ref - gen)))
    else:
        corr = M.first_differences_corr(ref, gen)
        err = float(np.mean(np.abs(ref - gen)))
    return {"corrcoef": corr, "abs_error": err,
            "reference_statistic": ref.tolist(), "generated_statistic": gen.tolist()}


def disentanglement_row(values: Sequence[float], source: np.ndarray, outputs: Sequence[np.ndarray]
                        ) -> dict[str, float]:
    """|Pearson r| between the swept control and each of the five statistics (0 when flat)."""
    mids = [o[len(o) // 2] for o in outputs]
    stats = {
        "sharpness": [M.clip_statistic("sharpness", o) for o in outputs],
        "brightness": [M.clip_statistic("brightness", o) for o in outputs],
        "colour_balance": [M.clip_statistic("colour_balance", o) for o in outputs],
        "zoom_scale": [1.0] + [M.affine_scale(mids[0], m) for m in mids[1:]],
        "structure": [M.clip_ssim(source[:len(o)], o[:len(source)]) for o in outputs],
    }
    row = {}
    for name in M.STATISTICS:
        r = M.pearson(values, stats[name])
        row[name] = 0.0 if r is None else abs(r)
    return row


def evaluate(sweeps: Sequence[Sweep], methods: Mapping[str, Editor], *,
             view: Callable[[np.ndarray], np.ndarray] | None = None) -> dict[str, Any]:
    """Every figure for every method: per effect CorrCoef and absolute error (means over sweeps, with how many
    sweeps had a defined r), PSNR/SSIM to the source and to the reference, and the disentanglement matrix.
    `view` maps every measured clip first (train/calibrated.py: a calibrated camera's linear space)."""
    lpips_model, lpips_note = M.lpips_status()
    result: dict[str, Any] = {"methods": {}, "notes": [lpips_note],
                              "sweeps": [{"effect": s.effect, "scene": s.scene, "values": s.values,
                                          "reference_kind": s.reference_kind} for s in sweeps]}
    for name, editor in methods.items():
        per_effect: dict[str, dict[str, list]] = {}
        matrix: dict[str, list[dict[str, float]]] = {}
        details = []
        for sweep in sweeps:
            outputs = [np.asarray(editor(sweep.source, sweep.controls(v))) for v in sweep.values]
            # a model may return fewer frames (4k+1) or its own resolution: compare like with like
            shape = outputs[0].shape
            references = [_like(r, shape) for r in sweep.references]
            source = _like(sweep.source, shape)
            outputs = [_like(o, shape) for o in outputs]
            if view is not None:
                references, source, outputs = [view(r) for r in references], view(source), [view(o) for o in outputs]
            acc = control_accuracy(sweep.effect, references, outputs)
            bucket = per_effect.setdefault(sweep.effect, {k: [] for k in
                                                          ("corrcoef", "abs_error", "psnr_source", "ssim_source",
                                                           "psnr_reference", "ssim_reference")})
            bucket["corrcoef"].append(acc["corrcoef"])
            bucket["abs_error"].append(acc["abs_error"])
            for out, ref in zip(outputs, references):
                n = min(len(out), len(source), len(ref))
                bucket["psnr_source"].append(M.clip_psnr(source[:n], out[:n]))
                bucket["ssim_source"].append(M.clip_ssim(source[:n], out[:n]))
                bucket["psnr_reference"].append(M.clip_psnr(ref[:n], out[:n]))
                bucket["ssim_reference"].append(M.clip_ssim(ref[:n], out[:n]))
            matrix.setdefault(EFFECTS[sweep.effect][0], []).append(
                disentanglement_row(sweep.values, source, outputs))
            details.append({"effect": sweep.effect, "scene": sweep.scene, **acc})
        summary = {}
        for effect, bucket in per_effect.items():
            defined = [c for c in bucket["corrcoef"] if c is not None]
            summary[effect] = {
                "corrcoef": float(np.mean(defined)) if defined else None,
                "corrcoef_scored": float(np.sum(defined) / len(bucket["corrcoef"])),  # undefined counts as 0
                "sweeps": len(bucket["corrcoef"]), "sweeps_defined": len(defined),
                **{k: _finite_mean(bucket[k]) for k in bucket if k != "corrcoef"},
            }
        result["methods"][name] = {
            "effects": summary,
            "disentanglement": {control: {stat: float(np.mean([r[stat] for r in rows])) for stat in M.STATISTICS}
                                for control, rows in matrix.items()},
            "sweeps": details,
        }
    return result


def _like(clip: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """First `shape[0]` frames, scaled to cover shape's (H, W) and centre-cropped (as train/data.py crops)."""
    import cv2
    clip = np.asarray(clip)[: shape[0]]
    h, w = shape[1:3]
    if clip.shape[1:3] == (h, w):
        return clip
    scale = max(h / clip.shape[1], w / clip.shape[2])
    nh, nw = max(h, round(clip.shape[1] * scale)), max(w, round(clip.shape[2] * scale))
    y0, x0 = (nh - h) // 2, (nw - w) // 2
    return np.stack([cv2.resize(f, (nw, nh), interpolation=cv2.INTER_AREA)[y0:y0 + h, x0:x0 + w] for f in clip])


def _finite_mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


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
    effects = sorted({e for m in result["methods"].values() for e in m["effects"]})
    for effect in effects:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for i, method in enumerate(methods):
            first = next((s for s in result["methods"][method]["sweeps"] if s["effect"] == effect), None)
            if first is None:
                continue
            ref, gen = np.asarray(first["reference_statistic"]), np.asarray(first["generated_statistic"])
            if i == 0:
                ax.plot(_flat(ref), "k--", label="reference")
            ax.plot(_flat(gen), marker="o", label=method)
        ax.set_title(f"{effect}: {EFFECTS[effect][1]} along the sweep")
        ax.set_xlabel("sweep step")
        ax.legend(fontsize=7)
        path = out / f"sweep_{effect}.png"
        fig.tight_layout(), fig.savefig(path, dpi=90), plt.close(fig)
        plots.append(path.name)
    for method in methods:
        dis = result["methods"][method]["disentanglement"]
        if not dis:
            continue
        rows = list(dis)
        data = np.array([[dis[r][s] for s in M.STATISTICS] for r in rows])
        fig, ax = plt.subplots(figsize=(5, 0.6 + 0.5 * len(rows)))
        ax.imshow(data, vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(M.STATISTICS)), M.STATISTICS, rotation=30, fontsize=7)
        ax.set_yticks(range(len(rows)), [f"sweep {r}" for r in rows], fontsize=7)
        for (i, j), v in np.ndenumerate(data):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="w", fontsize=7)
        ax.set_title(f"disentanglement |r| — {method}", fontsize=9)
        path = out / f"disentanglement_{method}.png"
        fig.tight_layout(), fig.savefig(path, dpi=90), plt.close(fig)
        plots.append(path.name)
    md = _markdown(result, title, plots)
    (out / "report.md").write_text(md)
    (out / "report.html").write_text(_html(result, title, plots))
    return {"metrics": out / "metrics.json", "markdown": out / "report.md", "html": out / "report.html",
            "plots": [out / p for p in plots]}


def _flat(arr: np.ndarray) -> np.ndarray:
    return arr.mean(axis=1) if arr.ndim == 2 else arr


def _fmt(v: Any) -> str:
    return "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def _table(result: Mapping[str, Any]) -> list[list[str]]:
    rows = [["method", "effect", "CorrCoef", "scored (undef=0)", "abs err", "PSNR src", "SSIM src", "SSIM ref",
             "sweeps"]]
    for method, data in result["methods"].items():
        for effect, s in sorted(data["effects"].items()):
            rows.append([method, effect, _fmt(s["corrcoef"]), _fmt(s["corrcoef_scored"]), _fmt(s["abs_error"]),
                         _fmt(s["psnr_source"]), _fmt(s["ssim_source"]), _fmt(s["ssim_reference"]),
                         f"{s['sweeps_defined']}/{s['sweeps']}"])
    return rows


def _markdown(result: Mapping[str, Any], title: str, plots: list[str]) -> str:
    rows = _table(result)
    lines = [f"# {title}", "", "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    kinds = sorted({s["reference_kind"] for s in result["sweeps"]})
    lines += ["", f"Reference sweeps: {', '.join(kinds) or 'none'}.", ""]
    lines += [f"- {n}" for n in result.get("notes", [])]
    lines += [""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def _html(result: Mapping[str, Any], title: str, plots: list[str]) -> str:
    rows = _table(result)
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

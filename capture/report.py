"""End-of-session outputs: clips + proxies, pairs with quality checks, a contact sheet PNG, an HTML report."""

from __future__ import annotations

import html
import json
import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from rigs import video
from rigs.camera import values

from . import clips as clipkit
from . import status as words
from . import profiles
from . import sweeps as sweepkit
from .ledger import NOT_FAULTS, Ledger, combination_key
from .pairs import SceneContext, describe, form_pairs, numeric, quality_record
from .plan import Plan, format_duration
from .plan.check import shutter_interval_problem

THUMB_WIDTH = 160
SHEET_COLUMNS = 6
CONTACT_SHEET = "contact-sheet.png"
REPORT = "report.html"

# Tests kill the build after its k-th step (os._exit, as a kill -9 would leave it) to prove that every
# interrupted build is finished by a rerun; unset in normal use.
KILL_AT_STEP_ENV = "CINECTRL_TEST_KILL_AT_OUTPUT_STEP"
_steps_done = 0


def _step(what: str) -> None:
    """One durable step of the output build; the fault hook above dies right after step k."""
    global _steps_done
    _steps_done += 1
    wanted = os.environ.get(KILL_AT_STEP_ENV)
    if wanted and int(wanted) == _steps_done:
        print(f"killed after output step {_steps_done} ({what})", flush=True)
        os._exit(137)


@dataclass
class SessionOutputs:
    clips: dict[int, Path] = field(default_factory=dict)        # combo -> clip (stills) or recorded clip
    proxies: dict[int, Path] = field(default_factory=dict)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    contact_sheet: Path | None = None
    report: Path | None = None
    sweeps: list[Any] = field(default_factory=list)              # capture.sweeps.SweepResponse per sweep


def _combos(frames: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for f in frames:
        if f["kind"] in ("still", "clip"):
            grouped[f["combo"]].append(f)
    for rows in grouped.values():
        rows.sort(key=lambda r: r["frame_index"])
    return dict(grouped)


def _pass_starts(plan: Plan, grouped: dict[int, list[dict[str, Any]]]) -> dict[int, float]:
    """Where each combination's pass started on the slider (a camera-path sweep shifts them; 0 for stills)."""
    base = plan.trajectory.start_mm if plan.mode == "passes" and plan.trajectory else 0.0
    return {cid: float(rows[0].get("slider_target_mm") if plan.mode == "passes" and
                       rows[0].get("slider_target_mm") is not None else base) for cid, rows in grouped.items()}


def _recorded(rows: list[dict[str, Any]], root: Path) -> Path | None:
    """The clip (passes) or first still of a combination: its sidecars say what the camera saw."""
    for row in rows:
        if row["kind"] in ("clip", "still"):
            return root / row["path"]
    return None


def expected_pairs(n_combos: int) -> int:
    """Pairs a session of n settings combinations gets: the reference against every other one."""
    return n_combos - 1 if n_combos >= 2 else 0


def missing_outputs(ledger: Ledger, session_id: int) -> list[str]:
    """What the session still lacks to be complete: a clip (row, file, proxy) per combination, its pairs, the
    contact sheet, the report. Empty when every output exists and is catalogued."""
    session_dir = ledger.session_dir(session_id)
    combos = {f["combo"] for f in ledger.frames(session_id) if f["kind"] in ("still", "clip")}
    clips = {c["combination_key"]: c for c in ledger.catalog.clips(session_id)}
    missing = []
    for cid in sorted(combos):
        clip = clips.get(combination_key(cid))
        if clip is None:
            missing.append(f"clip {combination_key(cid)}")
            continue
        for what, path in (("clip", ledger.clip_path(session_id, clip.get("asset_id"))),
                           ("proxy", ledger.clip_path(session_id, clip.get("proxy_asset_id")))):
            if path is None or not path.is_file():
                missing.append(f"{what} file of {combination_key(cid)}")
    have = len(ledger.pairs(session_id))
    if have < expected_pairs(len(combos)):
        missing.append(f"{expected_pairs(len(combos)) - have} pair(s)")
    for name in (f"outputs/{sweepkit.FILE_NAME}", f"outputs/{CONTACT_SHEET}", REPORT):
        if not (session_dir / name).is_file():
            missing.append(name)
    return missing


def _clean_part_files(session_dir: Path) -> None:
    """Half-written outputs of an interrupted build (`*.part`): never kept, always rewritten."""
    for part in [*(session_dir / "outputs").glob("*.part"), *session_dir.glob("*.part")]:
        part.unlink(missing_ok=True)


def _reusable(ledger: Ledger, session_id: int, combo: int, clip: Path, proxy: Path) -> bool:
    """A clip catalogued by an earlier (interrupted) build whose files are still there and intact."""
    row = next((c for c in ledger.catalog.clips(session_id) if c["combination_key"] == combination_key(combo)),
               None)
    return (row is not None and ledger.clip_path(session_id, row.get("asset_id")) == clip
            and ledger.clip_path(session_id, row.get("proxy_asset_id")) == proxy
            and ledger.intact(row.get("asset_id"), clip) and ledger.intact(row.get("proxy_asset_id"), proxy))


def build_session_outputs(ledger: Ledger, session_id: int, plan: Plan) -> SessionOutputs:
    """Clips + proxies, pairs, contact sheet, report: each written atomically and catalogued; a rerun after an
    interruption builds only what is missing (catalogued clips with intact files are kept) and adds no rows
    twice (clips and pairs are keyed by session and combination)."""
    out = SessionOutputs()
    root = ledger.data_root
    session_dir = ledger.session_dir(session_id)
    outputs_dir = session_dir / "outputs"
    outputs_dir.mkdir(parents=True, exist_ok=True)
    _clean_part_files(session_dir)
    grouped = _combos(ledger.frames(session_id))
    settings = {cid: json.loads(rows[0]["requested_json"]) for cid, rows in grouped.items()}
    sequences: dict[int, list[np.ndarray]] = {}
    clip_ids: dict[int, int] = {}

    for cid, rows in grouped.items():
        paths = [root / r["path"] for r in rows]
        if all(r["kind"] == "still" for r in rows):     # stills (an imported still is a 1-frame clip)
            fps = float(plan.session.get("fps", 6))
            clip, proxy = outputs_dir / f"combo{cid:03d}.mp4", outputs_dir / f"combo{cid:03d}.proxy.mp4"
            sequences[cid] = [video.read_still(p) for p in paths]
            if not _reusable(ledger, session_id, cid, clip, proxy):
                video.stills_to_clip(paths, clip, fps=fps)
                _step(f"clip {clip.name} written")
                video.stills_to_clip(paths, proxy, fps=fps, width=clipkit.PROXY_WIDTH)
                _step(f"proxy {proxy.name} written")
        else:
            clip = next((p for p in paths if p.suffix.lower() in (".mp4", ".mov")), paths[0])
            proxy = outputs_dir / f"combo{cid:03d}.proxy.mp4"
            sequences[cid] = list(video.read_frames(clip))
            if not _reusable(ledger, session_id, cid, clip, proxy):
                video.transcode_proxy(clip, proxy, width=clipkit.PROXY_WIDTH)
                _step(f"proxy {proxy.name} written")
        out.clips[cid], out.proxies[cid] = clip, proxy
        h, w = sequences[cid][0].shape[:2]
        clip_ids[cid] = ledger.add_clip(session_id, cid, settings[cid], clip, proxy, frames=len(sequences[cid]),
                                        fps=float(video.probe(clip).fps), width=w, height=h)
        _step(f"clip {combination_key(cid)} catalogued")

    width = next(iter(sequences.values()))[0].shape[1] if sequences else 640
    scene = lambda cid: SceneContext.from_clip(_recorded(grouped[cid], root), width)  # noqa: E731
    profile = profiles.for_session(ledger.catalog, session_id)     # the body's calibration, if measured
    starts = _pass_starts(plan, grouped)
    for spec in form_pairs(settings, plan.pair_reference, scene=scene, profile=profile):
        offset = starts[spec.target] - starts[spec.reference]
        if offset:
            spec.deltas["path_offset_mm"] = offset
        quality = clipkit.pair_quality(sequences[spec.reference], sequences[spec.target], path_offset_mm=offset,
                                       zoom=spec.deltas.get("focal_ratio", 1.0),
                                       breathing=bool(spec.deltas.get("focus_m")))
        record = {
            "reference_combo": spec.reference, "target_combo": spec.target,
            "reference_clip": ledger.relative(out.clips[spec.reference]),
            "target_clip": ledger.relative(out.clips[spec.target]),
            "reference_proxy": ledger.relative(out.proxies[spec.reference]),
            "target_proxy": ledger.relative(out.proxies[spec.target]),
            "reference_settings": spec.reference_settings, "target_settings": spec.target_settings,
            "deltas": spec.deltas, "controls": spec.controls, "controls_source": spec.controls_source,
            "reference_controls": spec.reference_controls, "mapping": spec.mapping,
            "quality": flag_long_shutters(quality_record(quality, spec.controls, spec.controls_source), plan,
                                          spec.reference_settings, spec.target_settings),
        }
        record["pair_id"] = ledger.add_pair(session_id, clip_ids[spec.reference], clip_ids[spec.target], record)
        out.pairs.append(record)
        _step(f"pair {spec.reference}->{spec.target} catalogued")

    out.sweeps = measure_sweeps(settings, sequences, form_reference(settings, plan), grouped, root)
    sweepkit.save(out.sweeps, outputs_dir)
    _step("sweeps measured")
    out.contact_sheet = contact_sheet(sequences, settings, outputs_dir / CONTACT_SHEET, starts=starts)
    _step("contact sheet written")
    out.report = write_report(ledger, session_id, plan, out, session_dir / REPORT)
    _step("report written")
    return out


def form_reference(settings: dict[int, dict[str, str]], plan: Plan) -> int:
    from .pairs import choose_reference
    return choose_reference(settings, plan.pair_reference)


def measure_sweeps(settings: dict[int, dict[str, str]], sequences: dict[int, list[np.ndarray]], reference: int,
                   grouped: dict[int, list[dict[str, Any]]], root: Path) -> list[sweepkit.SweepResponse]:
    """The measured response of every sweep in the session (capture/sweeps.py), on the middle frame of each
    combination; the reference's true depth (a depth sidecar) when the camera wrote one."""
    frames = {cid: seq[len(seq) // 2] for cid, seq in sequences.items()}
    depth, focus = None, None
    recorded = _recorded(grouped[reference], root) if reference in grouped else None
    if recorded is not None and recorded.with_name(recorded.stem + ".depth.npz").is_file():
        with np.load(recorded.with_name(recorded.stem + ".depth.npz")) as data:
            maps = data["depth_m"].astype(np.float32)
        depth = maps[len(maps) // 2] if maps.ndim == 3 else maps
        focus = None
    return sweepkit.session_sweeps(settings, frames, reference, depth=depth, focus=focus)


def flag_long_shutters(quality: dict[str, Any], plan: Plan, *sides: dict[str, str]) -> dict[str, Any]:
    """QC fails a pass whose shutter is longer than its frame interval (`capture plan` refuses such plans; a
    session planned before that check, or resumed from its stored plan, still gets its pairs flagged)."""
    if plan.mode != "passes" or plan.trajectory is None:
        return quality
    long = [m for side in sides if (m := shutter_interval_problem(side.get("shutter"), plan.trajectory.fps))]
    if long:
        quality = {**quality, "flags": quality["flags"] + long, "failures": quality["failures"] + long,
                   "passed": False}
    return quality


def shown(settings: dict[str, str]) -> dict[str, str]:
    """Settings as a technician reads them: shutters as fractions (1/2, not 0.5 or 0.5000s)."""
    out = dict(settings)
    label = out.get("shutter")
    if label:
        try:
            out["shutter"] = values.format_shutter(values.parse_shutter(label))
        except ValueError:
            pass
    return out


def row_label(settings: dict[str, str], swept: list[str] | None, offset_mm: float | None) -> str:
    """A contact-sheet row: the swept settings, and where its pass ran on a camera-path sweep."""
    text = describe(shown(settings), swept or None)
    if offset_mm is not None:
        text += f" @ {offset_mm:+g} mm"
    return text


def contact_sheet(sequences: dict[int, list[np.ndarray]], settings: dict[int, dict[str, str]], out: Path, *,
                  starts: dict[int, float] | None = None) -> Path:
    """Rows: settings combinations (sorted by setting, then by path offset); columns: frames sampled along the
    camera path. A camera-path sweep's rows say their offset along the slider."""
    swept = [r for r in next(iter(settings.values()), {}) if len({s.get(r) for s in settings.values()}) > 1]
    starts = starts or {}
    shifted = len({starts.get(cid) for cid in settings}) > 1
    base = min((starts[c] for c in settings if c in starts), default=0.0)

    def offset(cid: int) -> float | None:
        return starts.get(cid, base) - base if shifted else None

    def sort_key(cid: int) -> tuple:
        values_ = numeric(settings[cid])
        return tuple(values_.get(r, 0.0) for r in swept) + (offset(cid) or 0.0, cid)

    order = sorted(settings, key=sort_key)
    label_w, pad = 150, 4
    first = next(iter(sequences.values()))[0]
    th = round(first.shape[0] * THUMB_WIDTH / first.shape[1])
    ncols = min(SHEET_COLUMNS, max(len(s) for s in sequences.values()))
    sheet = Image.new("RGB", (label_w + ncols * (THUMB_WIDTH + pad) + pad, len(order) * (th + pad) + pad + 18),
                      "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((pad, 2), "rows: " + (", ".join(swept) or "setting") + (", path offset" if shifted else "")
              + "   columns: position along the path",
              fill="black")
    for row, cid in enumerate(order):
        y = 18 + pad + row * (th + pad)
        draw.text((pad, y + th // 2 - 6), row_label(settings[cid], swept, offset(cid)), fill="black")
        seq = sequences[cid]
        picks = np.linspace(0, len(seq) - 1, num=min(ncols, len(seq))).round().astype(int)
        for col, i in enumerate(picks):
            thumb = Image.fromarray(seq[i]).resize((THUMB_WIDTH, th))
            sheet.paste(thumb, (label_w + pad + col * (THUMB_WIDTH + pad), y))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    sheet.save(tmp, format="PNG")
    _step(f"{tmp.name} written")
    tmp.replace(out)
    return out


def write_report(ledger: Ledger, session_id: int, plan: Plan, outputs: SessionOutputs, out: Path) -> Path:
    session = ledger.session(session_id)
    events = ledger.events(session_id)
    frames = ledger.frames(session_id)
    faults = Counter(e["kind"] for e in events if e["kind"] not in NOT_FAULTS)
    resumes = sum(e["kind"] == "resume" for e in events)
    takeovers = [e["message"] for e in events if e["kind"] == "takeover"]
    mismatches = ledger.readback_mismatches(session_id)
    seconds = (session.get("stopped_at") or time.time()) - (session.get("created_at") or time.time())
    esc = html.escape
    # the report is the build's last output: once it is written the session is complete
    state_shown = words.COMPLETE if session["word"] == words.BUILDING else session["word"]
    rel = lambda p: esc(str(Path(p).relative_to(out.parent)) if Path(p).is_relative_to(out.parent) else str(p))
    rows = "".join(
        f"<tr><td>{p['pair_id']}</td><td>{esc(describe(shown(p['reference_settings'])))}</td>"
        f"<td>{esc(describe(shown(p['target_settings'])))}</td>"
        f"<td>{esc(', '.join(f'{k} {v:+.2f}' for k, v in p['deltas'].items()))}</td>"
        f"<td>{esc(', '.join(f'{k} {v:.3f}' for k, v in p['controls'].items()) or p['controls_source'])}</td>"
        f"<td>{p['quality']['alignment_px']:.2f}</td><td>{p['quality']['clipped_fraction']:.3f}</td>"
        f"<td>{p['quality']['sharpness_ratio']:.2f}</td>"
        f"<td>{'pass' if p['quality']['passed'] else 'FAIL'}: {esc('; '.join(p['quality']['flags']) or 'ok')}</td></tr>"
        for p in outputs.pairs)
    sweep_rows = "".join(
        f"<tr><td>{esc(r.role)}</td><td>{esc(r.statistic)}</td><td>{esc(', '.join(f'{v:g}' for v in r.values))}</td>"
        f"<td>{esc(', '.join(f'{m:.3g}' for m in r.measured))}</td>"
        f"<td>{'n/a' if r.pearson is None else f'{r.pearson:+.2f}'}</td>"
        f"<td>{'pass' if r.passed else 'FLAG'}: {esc('; '.join(r.flags) or 'moves with the setting')}</td></tr>"
        for r in outputs.sweeps)
    mismatch_rows = "".join(
        f"<tr><td>{esc(m['point'])}</td><td>{esc(m['path'])}</td><td>{esc(m['role'])}</td>"
        f"<td>{esc(m['requested'])}</td><td>{esc(m['readback'] or '(not read back)')}</td></tr>" for m in mismatches)
    mismatch_html = (f"<table><tr><th>point</th><th>file</th><th>setting</th><th>requested</th><th>camera read back"
                     f"</th></tr>{mismatch_rows}</table>" if mismatches else
                     "<p>none: every frame's camera read-back equals the setting its point asked for</p>")
    fault_text = ", ".join(f"{k} x{v}" for k, v in sorted(faults.items())) or "none"
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>{esc(session['name'])}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #ccc;padding:3px 6px}}
table{{border-collapse:collapse}}pre{{background:#f4f4f4;padding:1em}}</style></head><body>
<h1>Session {session_id}: {esc(session['name'])}</h1>
<p>Scene <b>{esc(session['scene'])}</b>, operator <b>{esc(session['operator'])}</b>, mode {esc(session['mode'])},
take {session.get('take') or 1}, status <b>{esc(state_shown)}</b>. {esc(session.get('notes') or '')}</p>
<h2>Timing</h2><p>{len(frames)} files for {ledger.done_count(session_id)} points in {format_duration(seconds)}
(wall time since planning, resumes included: {resumes}).</p>
<h2>Faults survived</h2><p>{esc(fault_text)}</p>{''.join(f"<p>{esc(t)}</p>" for t in takeovers)}
<h2>Read-back mismatches ({len(mismatches)})</h2>{mismatch_html}
<h2>Pairs ({len(outputs.pairs)})</h2>
<p>Controls by {esc(outputs.pairs[0]['controls_source'] if outputs.pairs else 'rigs.optics.to_controls')}.</p>
<table><tr><th>pair</th><th>reference</th><th>target</th><th>physical deltas</th><th>controls</th>
<th>align px</th><th>clipped</th><th>sharpness</th><th>QC</th></tr>{rows}</table>
<h2>Sweeps ({len(outputs.sweeps)})</h2>
<p>Each sweep's statistic measured on every setting and checked against the physics (capture/sweeps.py): does it
move, the right way, monotonically?</p>
<table><tr><th>swept</th><th>statistic</th><th>settings</th><th>measured</th><th>Pearson r</th><th>QC</th></tr>
{sweep_rows}</table>
<h2>Contact sheet</h2><img src="{rel(outputs.contact_sheet)}" style="max-width:100%">
<h2>Plan</h2><pre>{esc(plan.text)}</pre></body></html>"""
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(body, encoding="utf-8")
    _step(f"{tmp.name} written")
    tmp.replace(out)
    return out

"""What `cinectrl catalog export` writes: flat records a researcher loads straight into pandas or a spreadsheet.

Every export is a named list of fields (name, type, unit, meaning) and a function that yields one flat record
per row: numbers as numbers, booleans as booleans, absent values as None, no nested JSON (a CSV cell is never
a JSON blob). docs/catalog.md documents each schema and a test holds it to the real export. To add an export
(e.g. reviews), append an `Export` to `EXPORTS`; the CLI offers every entry as `--what NAME`.

Columns that stand for a registry are derived from it, never listed here: one `control_<name>` per control
in rigs/controls.py, one `delta_<name>` per physical delta in capture/pairs.py, one `qc_<name>` per figure of
capture/clips.py's PairQuality, one `reference_<role>` / `other_<role>` per camera role.
"""

from __future__ import annotations

import json

import os
from dataclasses import dataclass, fields as dataclass_fields
from typing import TYPE_CHECKING, Any, Callable, Iterator

from rigs import controls as control_registry
from rigs.camera.protocol import ROLE_FIELDS, ROLES

from .clips import PairQuality
from .pairs import DELTA_UNITS

if TYPE_CHECKING:
    from .catalog import Catalog

TEXT, INTEGER, REAL, BOOLEAN = "text", "integer", "real", "boolean"


@dataclass(frozen=True)
class Field:
    name: str
    type: str        # text | integer | real | boolean
    unit: str        # "" when the value has none
    meaning: str


@dataclass(frozen=True)
class Export:
    name: str
    one_record_per: str
    fields: tuple[Field, ...]
    records: Callable[["Catalog"], Iterator[dict[str, Any]]]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]


# ------------------------------------------------------------------------------------------------ assets

# Numeric camera roles: (column suffix, unit), from rigs/camera/protocol.py's one role <-> field table. The
# per-role requested / read-back columns of the asset export.
ROLE_COLUMNS = {role: (f.column, f.unit) for role, f in ROLE_FIELDS.items()}

ASSET_FIELDS: tuple[Field, ...] = (
    Field("asset_id", INTEGER, "", "the asset's id in the catalog"),
    Field("path", TEXT, "", "the file, relative to the catalog's folder (POSIX separators)"),
    Field("abs_path", TEXT, "", "the file's absolute path on this machine"),
    Field("sha256", TEXT, "", "hash of the file's bytes (the asset's identity); empty when it could not be read"),
    Field("bytes", INTEGER, "bytes", "file size"),
    Field("kind", TEXT, "", "still, clip, proxy, raw, depth, sidecar or other"),
    Field("format", TEXT, "", "file extension, lower case"),
    Field("make", TEXT, "", "camera make (EXIF)"),
    Field("model", TEXT, "", "camera model (EXIF)"),
    Field("lens", TEXT, "", "lens model (EXIF or maker notes)"),
    Field("serial", TEXT, "", "camera body serial number"),
    Field("f_number", REAL, "f-number", "aperture the file records"),
    Field("f_number_source", TEXT, "", "where f_number came from, reader:tag (exifread:EXIF FNumber, "
                                       "exiftool:MakerNotes:FNumber ...)"),
    Field("exposure_s", REAL, "s", "exposure time the file records"),
    Field("exposure_text", TEXT, "", "exposure time as written, e.g. 1/400"),
    Field("exposure_source", TEXT, "", "where exposure_s came from, reader:tag"),
    Field("iso", INTEGER, "ISO", "ISO speed the file records"),
    Field("iso_source", TEXT, "", "where iso came from, reader:tag"),
    Field("focal_mm", REAL, "mm", "focal length"),
    Field("focal_35mm", REAL, "mm", "35 mm equivalent focal length"),
    Field("white_balance", TEXT, "", "white-balance mode or preset"),
    Field("kelvin", INTEGER, "K", "colour temperature (maker notes)"),
    Field("datetime_original", TEXT, "ISO 8601", "when the picture was taken, with sub-seconds and offset where "
                                                 "recorded"),
    Field("width", INTEGER, "px", "image or video width"),
    Field("height", INTEGER, "px", "image or video height"),
    Field("orientation", INTEGER, "", "EXIF orientation code 1-8"),
    Field("duration_s", REAL, "s", "video duration"),
    Field("frames", INTEGER, "frames", "video frame count"),
    Field("fps", REAL, "frames/s", "video frame rate"),
    Field("metadata_status", TEXT, "", "parsed, unparsed or error"),
    Field("metadata_source", TEXT, "", "exifread, exiftool or exifread+exiftool"),
    Field("error", TEXT, "", "why the metadata is unparsed or the file is in error, in words"),
    Field("session_id", INTEGER, "", "capture session that made the file (empty for loose files)"),
    Field("point_id", INTEGER, "", "ledger point the file is the frame of"),
    Field("frame_index", INTEGER, "", "index along the camera path"),
    *(Field(f"requested_{column}", REAL, unit, f"{role} the capture plan asked for")
      for role, (column, unit) in ROLE_COLUMNS.items()),
    *(Field(f"readback_{column}", REAL, unit, f"{role} the camera reported after setting it")
      for role, (column, unit) in ROLE_COLUMNS.items()),
    Field("slider_target_mm", REAL, "mm", "slider position asked for"),
    Field("slider_mm", REAL, "mm", "slider position read back (GRBL machine position)"),
)

_ASSETS_QUERY = (
    "SELECT a.id AS asset_id, a.path, a.sha256, a.bytes, a.kind, a.format, e.make, e.model, e.lens, e.serial, "
    "e.f_number, e.f_number_source, e.exposure_s, e.exposure_text, e.exposure_source, e.iso, e.iso_source, "
    "e.focal_mm, e.focal_35mm, e.white_balance, e.kelvin, e.datetime_original, "
    "coalesce(a.width, e.width) AS width, coalesce(a.height, e.height) AS height, e.orientation, e.duration_s, "
    "a.frames, a.fps, a.metadata_status, a.metadata_source, a.error, a.session_id, a.point_id, a.frame_index, "
    + ", ".join(f"max(CASE WHEN st.role = '{role}' THEN st.requested_value END) AS requested_{column}"
                for role, (column, _) in ROLE_COLUMNS.items()) + ", "
    + ", ".join(f"max(CASE WHEN st.role = '{role}' THEN st.readback_value END) AS readback_{column}"
                for role, (column, _) in ROLE_COLUMNS.items())
    + ", sp.target_mm AS slider_target_mm, sp.position_mm AS slider_mm "
    "FROM assets a LEFT JOIN exif e ON e.asset_id = a.id LEFT JOIN slider_positions sp ON sp.asset_id = a.id "
    "LEFT JOIN asset_settings st ON st.asset_id = a.id GROUP BY a.id ORDER BY a.id"
)


def _absolute(root: str, stored: str | None) -> str | None:
    return None if stored is None else os.path.normpath(os.path.join(root, stored))


def asset_records(catalog: "Catalog") -> Iterator[dict[str, Any]]:
    """One record per asset: the file, its EXIF, session/point, requested and read-back settings, slider."""
    root = str(catalog.data_root)
    for row in catalog.db.query(_ASSETS_QUERY):
        row["abs_path"] = _absolute(root, row["path"])
        yield row


# ------------------------------------------------------------------------------------------------ pairs

_QC_UNITS = {"alignment_px": "px", "clipped_fraction": "fraction", "sharpness_ratio": "ratio", "frames": "frames",
             "path_offset_mm": "mm", "breathing_scale": "ratio"}
QC_NAMES = tuple(f.name for f in dataclass_fields(PairQuality))


def _clip_fields(side: str, what: str) -> tuple[Field, ...]:
    return (
        Field(f"{side}_clip_id", INTEGER, "", f"the {what} clip's id"),
        Field(f"{side}_combination", TEXT, "", f"the {what} clip's settings combination in the session"),
        Field(f"{side}_path", TEXT, "", f"the {what} clip, relative to the catalog's folder"),
        Field(f"{side}_abs_path", TEXT, "", f"the {what} clip's absolute path"),
        Field(f"{side}_proxy_path", TEXT, "", f"the {what} clip's review proxy, relative to the catalog's folder"),
        Field(f"{side}_proxy_abs_path", TEXT, "", f"the {what} clip's review proxy, absolute path"),
        *(Field(f"{side}_{role}", TEXT, "", f"{role} setting of the {what} clip, as the camera labels it")
          for role in ROLES),
    )


PAIR_FIELDS: tuple[Field, ...] = (
    Field("pair_id", INTEGER, "", "the pair's id in the catalog"),
    Field("session_id", INTEGER, "", "capture session both clips come from"),
    Field("session", TEXT, "", "the session's name"),
    Field("scene", TEXT, "", "the scene the session filmed"),
    Field("camera", TEXT, "", "make and model of the session's camera"),
    Field("fps", REAL, "frames/s", "frame rate of the reference clip"),
    Field("frames", INTEGER, "frames", "frames in the reference clip"),
    Field("slider_from_mm", REAL, "mm", "slider target at the first frame of the camera path"),
    Field("slider_to_mm", REAL, "mm", "slider target at the last frame of the camera path"),
    Field("slider_steps", INTEGER, "frames", "positions along the camera path"),
    Field("review_state", TEXT, "", "unreviewed, in_review, accepted, rejected or disputed"),
    Field("train_ready", BOOLEAN, "", "true when review accepted the pair for training"),
    *_clip_fields("reference", "reference"),
    *_clip_fields("other", "other"),
    *(Field(f"control_{c.name}", REAL, f"normalised {c.range_text}",
            f"{c.title}: {c.help}") for c in control_registry.CONTROLS),
    *(Field(f"delta_{name}", REAL, unit, f"{meaning}, other clip against the reference")
      for name, (unit, meaning) in DELTA_UNITS.items()),
    *(Field(f"qc_{name}", INTEGER if name == "frames" else REAL, _QC_UNITS.get(name, ""),
            f"automatic quality check: {name.replace('_', ' ')}") for name in QC_NAMES),
    Field("qc_flags", TEXT, "", "quality-check warnings, separated by '; ' (empty when none)"),
)

_SLIDER_PATH_QUERY = (
    "SELECT slider_target_mm FROM points WHERE session_id = ? AND combination_key = ? "
    "AND slider_target_mm IS NOT NULL ORDER BY frame_index, ordinal"
)


def _number(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def pair_records(catalog: "Catalog") -> Iterator[dict[str, Any]]:
    """One record per clip pair: both clips (paths, settings per role), controls, deltas, QC, review state."""
    root = str(catalog.data_root)
    for row in catalog.pairs():
        out: dict[str, Any] = {k: row[k] for k in ("pair_id", "session_id", "session", "scene", "fps", "frames",
                                                   "review_state", "train_ready")}
        out["camera"] = row["camera"] or None
        path = [r[0] for r in catalog.conn.execute(_SLIDER_PATH_QUERY,
                                                   (row["session_id"], row["reference_combination"]))]
        out["slider_from_mm"], out["slider_to_mm"] = (path[0], path[-1]) if path else (None, None)
        out["slider_steps"] = len(path) or None
        for side in ("reference", "other"):
            out[f"{side}_clip_id"] = row[f"{side}_clip_id"]
            out[f"{side}_combination"] = row[f"{side}_combination"]
            for key in ("path", "proxy_path"):
                out[f"{side}_{key}"] = row[f"{side}_{key}"]
                out[f"{side}_{key.replace('path', 'abs_path')}"] = _absolute(root, row[f"{side}_{key}"])
            settings = row[f"{side}_settings"] or {}
            for role in ROLES:
                value = settings.get(role)
                out[f"{side}_{role}"] = None if value is None else str(value)
        controls, deltas, qc = row["controls"] or {}, row["deltas"] or {}, row["qc"] or {}
        for name in control_registry.NAMES:
            out[f"control_{name}"] = _number(controls.get(name))
        for name in DELTA_UNITS:
            out[f"delta_{name}"] = _number(deltas.get(name))
        for name in QC_NAMES:
            out[f"qc_{name}"] = _number(qc.get(name))
        out["qc_flags"] = "; ".join(str(f) for f in qc.get("flags") or []) or None
        yield out


# ------------------------------------------------------------------------------------------------ reviews

REVIEW_FIELDS: tuple[Field, ...] = (
    Field("pair_id", INTEGER, "", "the pair the verdict is on"),
    Field("gold_kind", TEXT, "", "a gold task's defect (shift, flicker, swap); empty for a real pair"),
    Field("stage", TEXT, "", "review or adjudication"),
    Field("account", TEXT, "", "the reviewer's account (email) as Label Studio reported it"),
    Field("account_id", INTEGER, "", "the account's user id on the server"),
    Field("server", TEXT, "", "the Label Studio instance key the verdict came from"),
    Field("role", TEXT, "", "annotator or adjudicator, as registered in the catalog; empty when unregistered"),
    Field("verdict", TEXT, "", "accept or reject (the review view offers no other verdict)"),
    Field("reasons", TEXT, "", "reason codes, separated by '; '"),
    Field("rating", REAL, "1-5", "how clearly the effect shows"),
    Field("defects", TEXT, "frames", "defective frame ranges first-last, separated by '; '"),
    Field("notes", TEXT, "", "the reviewer's notes"),
    Field("created_at", TEXT, "ISO 8601", "when the verdict was first made (UTC)"),
    Field("updated_at", TEXT, "ISO 8601", "when it was last changed (UTC)"),
    Field("lead_time_s", REAL, "s", "time the reviewer spent on the task (Label Studio's lead time)"),
    Field("counted", BOOLEAN, "", "whether the gate counted this verdict"),
    Field("gate_note", TEXT, "", "why the gate did not count it"),
    Field("pair_state", TEXT, "", "the pair's review state now"),
    Field("decided_by", TEXT, "", "accounts whose verdicts decided the pair, separated by '; '"),
    Field("adjudicated_by", TEXT, "", "the adjudicator who settled a split, if any"),
    Field("decided_at", TEXT, "ISO 8601", "when the pair was decided (UTC)"),
    Field("external_id", TEXT, "", "the Label Studio annotation id"),
)


def _iso(t: float | None) -> str | None:
    from datetime import datetime, timezone
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def _listed(value: str | None, fmt: Callable[[Any], str] = str) -> str | None:
    items = json.loads(value) if value else []
    if not isinstance(items, list):
        items = [items]
    return "; ".join(fmt(i) for i in items) or None


def review_records(cat: "Catalog") -> Iterator[dict[str, Any]]:
    """One record per verdict: pair, account and role, verdict, reasons, defect ranges, notes, times, whether the
    gate counted it (and why not), and how the pair was decided (by whom, adjudicated by whom)."""
    cur = cat.conn.execute(
        "SELECT r.pair_id, p.gold_kind, coalesce(r.stage, 'review'), r.annotator, r.account_id, r.server, a.role, "
        "r.verdict, r.reasons_json, r.rating, r.defects_json, r.notes, r.created_at, r.updated_at, r.lead_time_s, "
        "r.counted, r.gate_note, p.review_state, p.decided_by, p.adjudicated_by, p.decided_at, r.external_id "
        "FROM reviews r JOIN pairs p ON p.id = r.pair_id "
        "LEFT JOIN review_accounts a ON a.server = r.server AND a.user_id = r.account_id "
        "ORDER BY r.pair_id, coalesce(r.updated_at, r.created_at), r.id")
    names = [f.name for f in REVIEW_FIELDS]
    for row in cur:
        rec = dict(zip(names, row))
        rec["reasons"] = _listed(rec["reasons"])
        rec["defects"] = _listed(rec["defects"], lambda r: f"{r[0]}-{r[1]}" if isinstance(r, list) else str(r))
        rec["decided_by"] = _listed(rec["decided_by"])
        adjudicated = json.loads(rec["adjudicated_by"]) if rec["adjudicated_by"] else None
        rec["adjudicated_by"] = "; ".join(adjudicated) if isinstance(adjudicated, list) else adjudicated
        for key in ("created_at", "updated_at", "decided_at"):
            rec[key] = _iso(rec[key])
        rec["counted"] = None if rec["counted"] is None else bool(rec["counted"])
        yield rec


EXPORTS: dict[str, Export] = {
    "assets": Export("assets", "file", ASSET_FIELDS, asset_records),
    "pairs": Export("pairs", "clip pair", PAIR_FIELDS, pair_records),
    "reviews": Export("reviews", "verdict", REVIEW_FIELDS, review_records),
}


def schema_markdown(export: Export) -> str:
    """The export's schema as the Markdown table docs/catalog.md carries (checked by a test)."""
    lines = ["| field | type | unit | meaning |", "|---|---|---|---|"]
    lines += [f"| `{f.name}` | {f.type} | {f.unit} | {f.meaning} |" for f in export.fields]
    return "\n".join(lines)

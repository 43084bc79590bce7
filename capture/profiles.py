"""Calibration profiles in the catalog: the only door into `calibration_profiles` and its session links.

Profiles are versioned per body + lens (`CalibrationProfile.key`): measuring again, or importing a profile,
stores a new version and never rewrites an old one, so a dataset built last month can still say which
calibration it used. Each version records the catalog sessions its sections came from
(`calibration_profile_sessions`); imported profiles link the sessions this catalog also holds (by uid).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Iterable, Mapping

from rigs.calibration.inputs import CalibrationInputError
from rigs.calibration.profile import CalibrationProfile, body_key

from .catalog import Catalog


class ProfileNotFound(LookupError):
    """No stored profile matches; the message says what is stored and how to make one."""


def save(catalog: Catalog, profile: CalibrationProfile, *, note: str,
         sessions: Mapping[str, Iterable[int]] | None = None) -> CalibrationProfile:
    """Store `profile` as the next version of its body + lens; returns it with that version number.
    `sessions`: section -> catalog session ids whose frames fed it (new links); sections carried over from the
    previous version keep their links."""
    with catalog.transaction():
        row = catalog.conn.execute("SELECT max(version) FROM calibration_profiles WHERE body_key = ?",
                                   (profile.key,)).fetchone()
        version = int(row[0] or 0) + 1
        stored = replace(profile, version=version)
        cur = catalog.conn.execute(
            "INSERT INTO calibration_profiles (body_key, make, model, serial, lens, version, sections, profile_json, "
            "note, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (stored.key, stored.make, stored.model, stored.serial, stored.lens, version, ",".join(stored.measured()),
             stored.to_json(), note, stored.created_at))
        profile_id = int(cur.lastrowid)
        links: set[tuple[int, str]] = set()
        for section, source in stored.sources.items():
            for uid in source.get("sessions", []):
                found = catalog.conn.execute("SELECT id FROM sessions WHERE uid = ?", (uid,)).fetchone()
                if found:
                    links.add((int(found[0]), section))
        for section, ids in (sessions or {}).items():
            links.update((int(i), section) for i in ids)
        catalog.conn.executemany("INSERT OR IGNORE INTO calibration_profile_sessions (profile_id, session_id, section) "
                                 "VALUES (?,?,?)", [(profile_id, sid, section) for sid, section in sorted(links)])
    return stored


def latest(catalog: Catalog, key: str) -> CalibrationProfile | None:
    row = catalog.conn.execute("SELECT profile_json FROM calibration_profiles WHERE body_key = ? "
                               "ORDER BY version DESC LIMIT 1", (key,)).fetchone()
    return _load(row[0]) if row else None


def get(catalog: Catalog, key: str, version: int | None = None) -> CalibrationProfile:
    if version is None:
        found = latest(catalog, key)
    else:
        row = catalog.conn.execute("SELECT profile_json FROM calibration_profiles WHERE body_key = ? AND version = ?",
                                   (key, version)).fetchone()
        found = _load(row[0]) if row else None
    if found is None:
        raise ProfileNotFound(f"no calibration profile {key!r}" + (f" version {version}" if version else "") +
                              f" in {catalog.path}; {_stored_hint(catalog)}")
    return found


def for_camera(catalog: Catalog, *, make: str | None, model: str | None, serial: str | None,
               lens: str | None) -> CalibrationProfile | None:
    """The latest profile of this body + lens: the exact identity, else the same serial and lens (vendors spell
    the make differently over USB and in EXIF), else the same model and lens for a body without a serial."""
    exact = latest(catalog, body_key(make, model, serial, lens))
    if exact is not None:
        return exact
    lens = (lens or "").strip()
    if serial and serial.strip():
        sql, args = "serial = ? AND coalesce(lens, '') = ?", (serial.strip(), lens)
    elif model and model.strip():
        sql, args = "model = ? AND coalesce(serial, '') = '' AND coalesce(lens, '') = ?", (model.strip(), lens)
    else:
        return None
    row = catalog.conn.execute(f"SELECT profile_json FROM calibration_profiles WHERE {sql} "
                               "ORDER BY created_at DESC, version DESC LIMIT 1", args).fetchone()
    return _load(row[0]) if row else None


def for_session(catalog: Catalog, session_id: int) -> CalibrationProfile | None:
    """The latest profile of the camera a session was shot with (None: the ideal camera applies)."""
    for device in catalog.session_devices(session_id):
        if device["kind"] == "camera":
            return for_camera(catalog, make=device["make"], model=device["model"], serial=device["serial"],
                              lens=device["lens"])
    return None


def find(catalog: Catalog, ref: str | None) -> CalibrationProfile:
    """A profile by reference: its key, a serial, a unique part of its label, with `@N` for a version; None or
    '' = the only body + lens stored."""
    ref = (ref or "").strip()
    name, _, version_text = ref.partition("@")
    version = None
    if version_text:
        if not version_text.lstrip("v").isdigit():
            raise ProfileNotFound(f"{ref!r}: write a version as @N, e.g. {name}@2")
        version = int(version_text.lstrip("v"))
    keys = [r["body_key"] for r in listing(catalog, versions=False)]
    if not name:
        matches = keys
    else:
        matches = [k for k in keys if k == name] or [k for k in keys if name.lower() in k.lower()]
    if not matches:
        raise ProfileNotFound(f"no calibration profile matches {ref!r}; {_stored_hint(catalog)}")
    if len(matches) > 1:
        raise ProfileNotFound(f"{ref or 'no profile named'!r} matches {len(matches)} bodies ({'; '.join(matches)}); "
                              "name one (its serial or key)")
    return get(catalog, matches[0], version)


def listing(catalog: Catalog, *, versions: bool = True) -> list[dict[str, Any]]:
    """Stored profiles (every version, or the latest per body + lens) with their session ids."""
    where = "" if versions else ("WHERE version = (SELECT max(version) FROM calibration_profiles p2 "
                                 "WHERE p2.body_key = p.body_key)")
    rows = catalog.rows(f"SELECT p.id, p.body_key, p.make, p.model, p.serial, p.lens, p.version, p.sections, p.note, "
                        f"p.created_at, (SELECT group_concat(DISTINCT s.session_id) FROM calibration_profile_sessions s "
                        f"WHERE s.profile_id = p.id) AS sessions FROM calibration_profiles p {where} "
                        "ORDER BY p.body_key, p.version")
    for row in rows:
        row["sessions"] = sorted(int(v) for v in (row["sessions"] or "").split(",") if v)
        row["sections"] = [s for s in row["sections"].split(",") if s]
    return rows


def import_profile(catalog: Catalog, profile: CalibrationProfile, *, source: str) -> tuple[CalibrationProfile, bool]:
    """Store an imported profile as a new version (False when the latest stored one has the same content)."""
    current = latest(catalog, profile.key)
    if current is not None and _content(current) == _content(profile):
        return current, False
    return save(catalog, profile, note=f"imported from {source} (was version {profile.version or '?'})"), True


def _content(profile: CalibrationProfile) -> str:
    data = profile.to_dict()
    for key in ("version", "created_at"):
        data.pop(key)
    return json.dumps(data, sort_keys=True)


def _load(text: str) -> CalibrationProfile:
    try:
        return CalibrationProfile.from_json(text, where="stored profile")
    except CalibrationInputError as exc:
        raise ProfileNotFound(f"{exc} (in the catalog: it was written by another cinectrl version?)") from None


def _stored_hint(catalog: Catalog) -> str:
    rows = listing(catalog, versions=False)
    if not rows:
        return "none is stored yet: run `cinectrl rig calibrate PLAN` or `cinectrl rig calibration import FILE`"
    return "stored: " + "; ".join(f"{r['body_key']} (v{r['version']})" for r in rows)

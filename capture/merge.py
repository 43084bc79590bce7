"""Bring another station's catalog into this one: sessions, ledger, assets, clips, pairs, reviews, runs.

Rows are matched on identities that do not depend on either file's row ids (session uid, device identity,
(session, ordinal), sha256, (session, combination), external review id ...), so merging twice, or merging
catalogs that already share some rows, adds nothing twice. Everything happens in one transaction.
Files are referenced where they are (paths rewritten relative to this catalog's data root) or, with
`copy_files`, copied under `stations/<station id>/` and checked against their sha256.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .catalog import Catalog, CatalogError, sha256_file


@dataclass
class MergeSummary:
    station_id: str
    added: dict[str, int] = field(default_factory=dict)
    present: dict[str, int] = field(default_factory=dict)
    copied: int = 0
    skipped: list[str] = field(default_factory=list)

    def line(self) -> str:
        added = ", ".join(f"{n} {t}" for t, n in self.added.items() if n) or "nothing new"
        present = sum(self.present.values())
        out = f"merged station {self.station_id}: {added}; {present} rows already here"
        if self.copied:
            out += f"; {self.copied} files copied"
        if self.skipped:
            out += f"; {len(self.skipped)} skipped"
        return out


def open_other(path: Path) -> Catalog:
    """The other catalog, read-only: refused unless it is a cinectrl catalog at our schema version."""
    if not path.is_file():
        raise CatalogError(f"no catalog to merge at {path}: pass the other station's .db file")
    try:
        return Catalog(path, readonly=True)
    except CatalogError as exc:
        raise CatalogError(f"cannot merge: {exc}; nothing was changed") from None


def merge_catalog(target: Catalog, other_path: str | os.PathLike[str], *, copy_files: bool = False) -> MergeSummary:
    other_path = Path(other_path)
    if other_path.resolve() == target.path.resolve():
        raise CatalogError(f"{other_path} is this catalog: nothing to merge")
    other = open_other(other_path)
    try:
        summary = MergeSummary(str(other.station_id))
        with target.transaction():
            _Merger(target, other, other.data_root, summary.station_id, copy_files, summary).run()
    finally:
        other.close()
    return summary


class _Merger:
    def __init__(self, target: Catalog, src: Catalog, src_root: Path, station: str, copy_files: bool,
                 summary: MergeSummary) -> None:
        self.t, self.src, self.src_root, self.station = target, src, src_root, station
        self.copy_files, self.summary = copy_files, summary
        self.ids: dict[str, dict[int, int]] = {}
        self.copies: list[tuple[Path, Path, str]] = []

    # generic: find-or-insert every row of a table, remembering old id -> new id
    def table(self, name: str, find: Callable[[dict[str, Any]], int | None], *,
              fks: dict[str, str] | None = None, transform: Callable[[dict[str, Any]], dict[str, Any] | None] = None,
              has_id: bool = True) -> None:
        mapping = self.ids.setdefault(name, {})
        added = present = 0
        for row in self.src.db[name].rows:
            old_id = row.pop("id", None) if has_id else None
            for column, ref in (fks or {}).items():
                if row.get(column) is not None:
                    row[column] = self.ids[ref].get(row[column])
            if transform is not None:
                row = transform(row)
                if row is None:
                    continue
            found = find(row)
            if found is not None:
                present += 1
            else:
                columns = list(row)
                cur = self.t.conn.execute(
                    f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                    [row[c] for c in columns])
                found = cur.lastrowid
                added += 1
            if has_id and old_id is not None:
                mapping[old_id] = int(found)
        self.summary.added[name] = self.summary.added.get(name, 0) + added
        self.summary.present[name] = self.summary.present.get(name, 0) + present

    def one(self, sql: str, *args: Any) -> int | None:
        row = self.t.conn.execute(sql, args).fetchone()
        return None if row is None else int(row[0])

    def run(self) -> None:
        q = self.one
        self.table("sessions", lambda r: q("SELECT id FROM sessions WHERE uid = ?", r["uid"]))
        self.table("devices", lambda r: q("SELECT id FROM devices WHERE identity = ?", r["identity"]))
        self.table("session_devices", lambda r: q(
            "SELECT 1 FROM session_devices WHERE session_id = ? AND device_id = ? AND role = ?",
            r["session_id"], r["device_id"], r["role"]), fks={"session_id": "sessions", "device_id": "devices"},
            has_id=False)
        self.table("points", lambda r: q("SELECT id FROM points WHERE session_id = ? AND ordinal = ?",
                                         r["session_id"], r["ordinal"]), fks={"session_id": "sessions"})
        self.table("assets", self._find_asset, fks={"session_id": "sessions", "point_id": "points"},
                   transform=self._asset_path)
        for child in ("asset_settings", "slider_positions", "exif"):
            key = "asset_id = ? AND role = ?" if child == "asset_settings" else "asset_id = ?"
            self.table(child, lambda r, child=child, key=key: q(
                f"SELECT 1 FROM {child} WHERE {key}", *([r["asset_id"], r["role"]] if child == "asset_settings"
                                                        else [r["asset_id"]])),
                fks={"asset_id": "assets"}, transform=lambda r: r if r["asset_id"] is not None else None,
                has_id=False)
        self.table("clips", lambda r: q("SELECT id FROM clips WHERE session_id = ? AND combination_key = ?",
                                        r["session_id"], r["combination_key"]),
                   fks={"session_id": "sessions", "asset_id": "assets", "proxy_asset_id": "assets"})
        self.table("pairs", lambda r: q(
            "SELECT id FROM pairs WHERE session_id = ? AND reference_clip_id = ? AND other_clip_id = ?",
            r["session_id"], r["reference_clip_id"], r["other_clip_id"]),
            fks={"session_id": "sessions", "reference_clip_id": "clips", "other_clip_id": "clips"})
        self.table("reviews", self._find_review, fks={"pair_id": "pairs"})
        self.table("training_runs", lambda r: q(
            "SELECT id FROM training_runs WHERE name = ? AND created_at = ?", r["name"], r["created_at"]))
        self.table("training_run_pairs", lambda r: q(
            "SELECT 1 FROM training_run_pairs WHERE run_id = ? AND pair_id = ?", r["run_id"], r["pair_id"]),
            fks={"run_id": "training_runs", "pair_id": "pairs"}, has_id=False)
        self._copy()

    def _find_asset(self, row: dict[str, Any]) -> int | None:
        found = self.t.conn.execute("SELECT id, session_id, point_id FROM assets WHERE sha256 = ?",
                                    (row["sha256"],)).fetchone()
        if found is None:
            return None
        if found[1] is None and row["session_id"] is not None:   # loose here, captured there: link it
            self.t.attach_asset(found[0], session_id=row["session_id"], point_id=row["point_id"],
                                frame_index=row["frame_index"])
        return int(found[0])

    def _asset_path(self, row: dict[str, Any]) -> dict[str, Any] | None:
        if row["sha256"] is None:          # an unreadable file on the other station: nothing to bring
            self.summary.skipped.append(f"{row['path']}: {row['error']}")
            return None
        source = (self.src_root / row["path"]).resolve()
        if self.copy_files and source.is_file() and not self.t.asset_by_sha256(row["sha256"]):
            inside = not row["path"].startswith("../")
            rel = row["path"] if inside else f"external/{source.name}"
            dest = self.t.data_root / "stations" / self.station / rel
            self.copies.append((source, dest, row["sha256"]))
            row["path"] = self.t.relpath(dest)
        else:
            row["path"] = self.t.relpath(source)
        return row

    def _find_review(self, row: dict[str, Any]) -> int | None:
        if row["external_id"] is not None:
            return self.one("SELECT id FROM reviews WHERE external_id = ?", row["external_id"])
        return self.one("SELECT id FROM reviews WHERE pair_id = ? AND annotator = ? AND created_at = ? AND verdict = ?",
                        row["pair_id"], row["annotator"], row["created_at"], row["verdict"])

    def _copy(self) -> None:
        """Copy files last (still inside the transaction: a failed copy rolls the merge back)."""
        for source, dest, sha in self.copies:
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not (dest.is_file() and sha256_file(dest) == sha):
                tmp = dest.with_name(dest.name + ".part")
                shutil.copyfile(source, tmp)
                if sha256_file(tmp) != sha:
                    tmp.unlink()
                    raise CatalogError(f"copy of {source} does not match its sha256 in the other catalog: "
                                       "the file changed since it was catalogued; re-ingest it there first")
                os.replace(tmp, dest)
            self.summary.copied += 1

"""The catalog's tables, as numbered forward migrations.

A catalog file records the version it is at in `PRAGMA user_version`; opening it applies every later
migration in one transaction each. A file from a newer cinectrl (a higher version than `SCHEMA_VERSION`)
is refused rather than guessed at. Never edit a released migration: append a new one.

Times are UNIX seconds (REAL, UTC). JSON columns hold UTF-8 JSON text (`*_json`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str


_V1 = """
CREATE TABLE catalog_info (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE schema_migrations (
    version     INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  REAL NOT NULL
);
CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY,
    uid          TEXT NOT NULL UNIQUE,           -- station-independent identity (merges key on it)
    station_id   TEXT NOT NULL,                  -- the catalog (station) that created the session
    name         TEXT NOT NULL,
    scene        TEXT,
    operator     TEXT,
    notes        TEXT,
    plan_toml    TEXT,
    plan_sha256  TEXT,
    mode         TEXT NOT NULL DEFAULT 'stills' CHECK (mode IN ('stills', 'passes')),
    rig_json     TEXT,                           -- rig identity: camera + slider identity, ports
    status       TEXT NOT NULL DEFAULT 'planned'
                 CHECK (status IN ('planned', 'running', 'paused', 'done', 'failed', 'aborted')),
    data_dir     TEXT,                           -- the session's folder, relative to the data root
    created_at   REAL NOT NULL,
    started_at   REAL,
    stopped_at   REAL
);
CREATE INDEX sessions_by_plan ON sessions(plan_sha256);
CREATE TABLE devices (
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('camera', 'slider', 'other')),
    make          TEXT,
    model         TEXT,
    serial        TEXT,
    lens          TEXT,
    firmware      TEXT,
    settings_json TEXT,                          -- slider: $$ settings; camera: anything worth keeping
    identity      TEXT NOT NULL UNIQUE           -- kind|make|model|serial|lens|firmware|settings: one row per setup
);
CREATE TABLE session_devices (
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    device_id  INTEGER NOT NULL REFERENCES devices(id),
    role       TEXT NOT NULL,                    -- camera | slider | ...
    PRIMARY KEY (session_id, device_id, role)
) WITHOUT ROWID;
CREATE TABLE points (
    id               INTEGER PRIMARY KEY,
    session_id       INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    ordinal          INTEGER NOT NULL,           -- order of capture within the session
    combination_key  TEXT,                       -- which settings combination this point belongs to
    frame_index      INTEGER,                    -- index along the camera path (passes: frame of the pass)
    settings_json    TEXT NOT NULL DEFAULT '{}', -- requested settings, role -> label
    slider_target_mm REAL,
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    error            TEXT,
    created_at       REAL NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    UNIQUE (session_id, ordinal)
);
CREATE INDEX points_by_status ON points(session_id, status);
CREATE TABLE assets (
    id              INTEGER PRIMARY KEY,
    path            TEXT NOT NULL,               -- relative to the catalog's data root (POSIX separators)
    sha256          TEXT UNIQUE,                 -- NULL only when the file could not be read at all
    bytes           INTEGER,
    kind            TEXT NOT NULL DEFAULT 'still'
                    CHECK (kind IN ('still', 'clip', 'proxy', 'raw', 'depth', 'sidecar', 'other')),
    format          TEXT,                        -- file extension, lower case, no dot
    width           INTEGER,
    height          INTEGER,
    frames          INTEGER,
    fps             REAL,
    session_id      INTEGER REFERENCES sessions(id),
    point_id        INTEGER REFERENCES points(id),
    frame_index     INTEGER,
    metadata_status TEXT NOT NULL CHECK (metadata_status IN ('parsed', 'unparsed', 'error')),
    metadata_source TEXT,                        -- exifread | exiftool | NULL
    error           TEXT,                        -- why unparsed / error, in words
    mtime           REAL,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);
CREATE INDEX assets_by_point ON assets(point_id);
CREATE INDEX assets_by_session ON assets(session_id, frame_index);
CREATE INDEX assets_by_path ON assets(path);
CREATE TABLE asset_settings (
    asset_id        INTEGER NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    role            TEXT NOT NULL
                    CHECK (role IN ('aperture', 'shutter', 'iso', 'white_balance', 'kelvin', 'focus', 'focal')),
    requested_text  TEXT,
    requested_value REAL,
    readback_text   TEXT,
    readback_value  REAL,
    exif_text       TEXT,
    exif_value      REAL,
    PRIMARY KEY (asset_id, role)
) WITHOUT ROWID;
CREATE TABLE slider_positions (
    asset_id         INTEGER PRIMARY KEY REFERENCES assets(id) ON DELETE CASCADE,
    target_mm        REAL,
    position_mm      REAL,                       -- machine position read back (GRBL MPos)
    at               REAL,                       -- when the position was read
    move_started_at  REAL,
    move_finished_at REAL
);
CREATE TABLE exif (
    asset_id          INTEGER PRIMARY KEY REFERENCES assets(id) ON DELETE CASCADE,
    source            TEXT NOT NULL,             -- exifread | exiftool
    make              TEXT,
    model             TEXT,
    lens              TEXT,
    serial            TEXT,
    f_number          REAL,
    exposure_s        REAL,
    exposure_text     TEXT,                      -- exact fraction as written, e.g. 1/400
    iso               INTEGER,
    iso_source        TEXT,                      -- which tag the ISO came from
    focal_mm          REAL,
    focal_35mm        REAL,
    white_balance     TEXT,
    kelvin            INTEGER,
    orientation       INTEGER,
    width             INTEGER,
    height            INTEGER,
    datetime_original TEXT,                      -- ISO 8601, with .subsec and offset where present
    duration_s        REAL,
    tags_json         TEXT NOT NULL              -- every tag read, key -> printable text
);
"""

_V2 = """
CREATE TABLE clips (
    id              INTEGER PRIMARY KEY,
    session_id      INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    combination_key TEXT NOT NULL,
    asset_id        INTEGER REFERENCES assets(id),
    proxy_asset_id  INTEGER REFERENCES assets(id),
    frames          INTEGER,
    fps             REAL,
    settings_json   TEXT NOT NULL DEFAULT '{}',
    created_at      REAL NOT NULL,
    UNIQUE (session_id, combination_key)
);
CREATE TABLE pairs (
    id                INTEGER PRIMARY KEY,
    session_id        INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    reference_clip_id INTEGER NOT NULL REFERENCES clips(id),
    other_clip_id     INTEGER NOT NULL REFERENCES clips(id),
    deltas_json       TEXT NOT NULL DEFAULT '{}',  -- physical deltas (stops, mireds, mm ...)
    controls_json     TEXT NOT NULL DEFAULT '{}',  -- normalised model controls (rigs/optics.py)
    qc_json           TEXT NOT NULL DEFAULT '{}',  -- automatic quality-check figures
    review_state      TEXT NOT NULL DEFAULT 'unreviewed'
                      CHECK (review_state IN ('unreviewed', 'in_review', 'accepted', 'rejected', 'disputed')),
    train_ready       INTEGER NOT NULL DEFAULT 0 CHECK (train_ready IN (0, 1)),
    created_at        REAL NOT NULL,
    updated_at        REAL NOT NULL,
    UNIQUE (session_id, reference_clip_id, other_clip_id)
);
CREATE INDEX pairs_by_session ON pairs(session_id, review_state);
CREATE TABLE reviews (
    id           INTEGER PRIMARY KEY,
    pair_id      INTEGER NOT NULL REFERENCES pairs(id) ON DELETE CASCADE,
    annotator    TEXT NOT NULL,
    created_at   REAL NOT NULL,
    verdict      TEXT NOT NULL,
    reasons_json TEXT NOT NULL DEFAULT '[]',
    rating       REAL,
    defects_json TEXT NOT NULL DEFAULT '[]',     -- defective frame ranges [[first, last], ...]
    notes        TEXT,
    external_id  TEXT UNIQUE,                    -- e.g. Label Studio annotation id: pulls are idempotent
    imported_at  REAL NOT NULL
);
CREATE INDEX reviews_by_pair ON reviews(pair_id);
CREATE TABLE training_runs (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL,
    config_json      TEXT NOT NULL DEFAULT '{}',
    code_version     TEXT,
    data_snapshot    TEXT,                       -- e.g. sha256 of the sorted pair ids used
    metrics_json     TEXT NOT NULL DEFAULT '{}',
    checkpoints_json TEXT NOT NULL DEFAULT '[]',
    status           TEXT NOT NULL DEFAULT 'running'
                     CHECK (status IN ('planned', 'running', 'done', 'failed', 'aborted')),
    output_dir       TEXT,
    created_at       REAL NOT NULL,
    finished_at      REAL
);
CREATE TABLE training_run_pairs (
    run_id  INTEGER NOT NULL REFERENCES training_runs(id) ON DELETE CASCADE,
    pair_id INTEGER NOT NULL REFERENCES pairs(id),
    split   TEXT NOT NULL DEFAULT 'train',
    PRIMARY KEY (run_id, pair_id)
) WITHOUT ROWID;
"""

# Where each exposure field came from, as "reader:tag": exifread:EXIF FNumber, exiftool:MakerNotes:ISO,
# exiftool:APP12:ExposureTime ... (a maker note shows in the tag). iso_source, from v1, takes the same form.
# Rows written before v3 are filled from what that code did: exifread read FNumber and ExposureTime from the
# EXIF IFD; exiftool's group was not kept.
_V3 = """
ALTER TABLE exif ADD COLUMN f_number_source TEXT;
ALTER TABLE exif ADD COLUMN exposure_source TEXT;
UPDATE exif SET
    f_number_source = CASE WHEN f_number IS NULL THEN NULL
                           WHEN source = 'exifread' THEN 'exifread:EXIF FNumber' ELSE source || ':FNumber' END,
    exposure_source = CASE WHEN exposure_s IS NULL THEN NULL
                           WHEN source = 'exifread' THEN 'exifread:EXIF ExposureTime'
                           ELSE source || ':ExposureTime' END,
    iso_source = CASE WHEN iso_source IS NULL THEN NULL
                      WHEN source = 'exifread' THEN 'exifread:EXIF ' || iso_source
                      ELSE source || ':' || iso_source END;
"""

_V4 = """
ALTER TABLE sessions ADD COLUMN plan_key TEXT;   -- sha256 of the parsed, normalised plan (capture/plan/identity.py)
ALTER TABLE sessions ADD COLUMN plan_path TEXT;  -- absolute path of the plan file it was run from
ALTER TABLE sessions ADD COLUMN take INTEGER;    -- 1, 2, ... among the sessions of one plan_key
ALTER TABLE sessions ADD COLUMN state TEXT;      -- the capture word (capture/status.py) where status is coarser
CREATE INDEX sessions_by_plan_key ON sessions(plan_key);
CREATE INDEX sessions_by_plan_path ON sessions(plan_path);
"""

_V5 = """
-- Review you can trust (annotate/): who voted as which account, which verdicts the gate counted, who decided,
-- and gold pairs (known-bad pairs derived from good ones) that can never become train-ready.
CREATE TABLE IF NOT EXISTS ls_projects (kind TEXT NOT NULL, server TEXT NOT NULL, project_id INTEGER NOT NULL,
    PRIMARY KEY (kind, server));
CREATE TABLE IF NOT EXISTS ls_tasks (server TEXT NOT NULL, project_id INTEGER NOT NULL, task_id INTEGER NOT NULL,
    pair_id INTEGER NOT NULL, kind TEXT NOT NULL, PRIMARY KEY (server, project_id, pair_id));
ALTER TABLE ls_projects ADD COLUMN overlap INTEGER;          -- verdicts per pair cinectrl set (the gate's quorum)
ALTER TABLE ls_projects ADD COLUMN url TEXT;                 -- where the server was last reached (display only)
ALTER TABLE ls_tasks ADD COLUMN context_sha TEXT;            -- adjudication: hash of the earlier verdicts last sent
CREATE TABLE review_accounts (
    server     TEXT NOT NULL,                                -- Label Studio instance key (annotate/server.py)
    user_id    INTEGER NOT NULL,                             -- the account's id on that server
    email      TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('annotator', 'adjudicator')),
    added_at   REAL NOT NULL,
    removed_at REAL,                                         -- verdicts made after this do not count
    PRIMARY KEY (server, user_id)
);
ALTER TABLE reviews ADD COLUMN stage TEXT CHECK (stage IS NULL OR stage IN ('review', 'adjudication'));
ALTER TABLE reviews ADD COLUMN server TEXT;                  -- instance key of the server the verdict came from
ALTER TABLE reviews ADD COLUMN account_id INTEGER;           -- Label Studio user id credited (completed_by)
ALTER TABLE reviews ADD COLUMN updated_by INTEGER;           -- Label Studio user id that last wrote it
ALTER TABLE reviews ADD COLUMN updated_at REAL;
ALTER TABLE reviews ADD COLUMN lead_time_s REAL;             -- Label Studio's time spent on the task
ALTER TABLE reviews ADD COLUMN counted INTEGER CHECK (counted IS NULL OR counted IN (0, 1));
ALTER TABLE reviews ADD COLUMN gate_note TEXT;               -- why the gate did not count it
CREATE INDEX reviews_by_account ON reviews(server, account_id);
CREATE INDEX points_by_combination ON points(session_id, combination_key);   -- a clip's frames (review table)
UPDATE reviews SET stage = CASE WHEN external_id LIKE 'ls-adj:%' THEN 'adjudication' ELSE 'review' END;
ALTER TABLE pairs ADD COLUMN decided_by TEXT;                -- JSON list of the accounts (emails) that decided
ALTER TABLE pairs ADD COLUMN adjudicated_by TEXT;            -- JSON list of adjudicators, when adjudication decided
ALTER TABLE pairs ADD COLUMN decided_at REAL;
ALTER TABLE pairs ADD COLUMN gold_kind TEXT CHECK (gold_kind IS NULL OR gold_kind IN ('shift', 'flicker', 'swap'));
ALTER TABLE pairs ADD COLUMN gold_source_pair_id INTEGER REFERENCES pairs(id);
CREATE TRIGGER pairs_gold_never_train_ready_insert BEFORE INSERT ON pairs
WHEN NEW.train_ready = 1 AND NEW.gold_kind IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'gold pairs are never train-ready'); END;
CREATE TRIGGER pairs_gold_never_train_ready_update BEFORE UPDATE OF train_ready, gold_kind ON pairs
WHEN NEW.train_ready = 1 AND NEW.gold_kind IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'gold pairs are never train-ready'); END;
"""

_V6 = """
CREATE TABLE calibration_profiles (
    id           INTEGER PRIMARY KEY,
    body_key     TEXT NOT NULL,                  -- make|model|serial|lens: one body + one lens
    make         TEXT,
    model        TEXT,
    serial       TEXT,
    lens         TEXT,
    version      INTEGER NOT NULL,               -- 1, 2, ... per body_key; every change is a new version
    sections     TEXT NOT NULL,                  -- measured sections, comma-separated (response,white_balance,...)
    profile_json TEXT NOT NULL,                  -- the whole profile (rigs/calibration/profile.py FORMAT)
    note         TEXT,                           -- what made this version, in words
    created_at   REAL NOT NULL,
    UNIQUE (body_key, version)
);
CREATE INDEX calibration_profiles_by_serial ON calibration_profiles(serial, lens);
CREATE TABLE calibration_profile_sessions (
    profile_id INTEGER NOT NULL REFERENCES calibration_profiles(id) ON DELETE CASCADE,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    section    TEXT NOT NULL,                    -- the measurement the session's frames fed
    PRIMARY KEY (profile_id, session_id, section)
) WITHOUT ROWID;
"""

_V7 = """
-- Provenance per take: assets are keyed by their bytes (sha256), so a retake whose rendered clip is byte-identical
-- to an earlier take's shares that asset row. Each session still owns its copy: one row per (session, file) says
-- which asset (blob) the session's own file holds. A session's clips and pairs resolve through its own rows, so
-- archiving one session's folder never breaks another's; two sessions using one asset are identical takes.
CREATE TABLE asset_uses (
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    asset_id   INTEGER NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    path       TEXT NOT NULL,                    -- the session's own copy, relative to the data root
    created_at REAL NOT NULL,
    PRIMARY KEY (session_id, path)
);
CREATE INDEX asset_uses_by_asset ON asset_uses(asset_id, session_id);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "capture and ingestion: sessions, devices, points, assets, settings, slider, exif", _V1),
    Migration(2, "downstream stages: clips, pairs, reviews, training runs", _V2),
    Migration(3, "per-field EXIF sources: f_number_source, exposure_source (iso_source as reader:tag)", _V3),
    Migration(4, "capture takes: sessions keyed by their normalised plan, plan file, take number, state word", _V4),
    Migration(5, "review accounts, counted verdicts, deciders, gold pairs", _V5),
    Migration(6, "rig calibration: versioned profiles per body + lens, and the sessions they came from", _V6),
    Migration(7, "provenance per take: each session's own copy of a shared (byte-identical) output asset", _V7),
)

SCHEMA_VERSION = MIGRATIONS[-1].version

"""Promises of the last round held by tests that fail without their code: a reading command's catalog
connection cannot write (not merely "happens not to"), and `catalog upgrade` says when what it applied was a
migration the file had skipped."""

from __future__ import annotations

import sqlite3

import pytest
from typer.testing import CliRunner

from capture.catalog import Catalog
from capture.schema import MIGRATIONS
from cinectrl.main import app

from .test_catalog_trust import READERS, lab  # noqa: F401  (the fixture: a catalog made by `catalog ingest`)

runner = CliRunner()
PROBE = "CREATE TABLE readonly_probe (x)"


READONLY = "attempt to write a readonly database"


def _write_attempt(conn: sqlite3.Connection) -> str:
    """A write through the connection as it is, then with `PRAGMA query_only` lifted: the file itself must
    be open read-only (`mode=ro` / `immutable=1`), not merely a read-write handle asked to behave."""
    outcomes = []
    for lift in (False, True):
        if lift:
            conn.execute("PRAGMA query_only=0")
        try:
            conn.execute(PROBE)
        except sqlite3.OperationalError as exc:
            outcomes.append(str(exc))
            continue
        conn.execute("DROP TABLE readonly_probe")
        outcomes.append("written")
    return outcomes[0] if outcomes[0] == outcomes[1] else " / ".join(outcomes)


@pytest.fixture
def write_attempts(monkeypatch):
    """Every catalog a command closes, tried for a write through its own connection just before it closes
    (the command itself runs for real: this only watches)."""
    attempts: list[str] = []
    close = Catalog.close

    def watched(self: Catalog) -> None:
        attempts.append(_write_attempt(self.conn))
        close(self)

    monkeypatch.setattr(Catalog, "close", watched)
    return attempts


@pytest.mark.parametrize("args", READERS, ids=" ".join)
def test_a_reading_command_holds_a_connection_that_cannot_write(lab, args, write_attempts):  # noqa: F811
    result = runner.invoke(app, ["catalog", *args, "--catalog", str(lab)])
    assert result.exit_code == 0, result.output
    assert write_attempts and all(a == READONLY for a in write_attempts), write_attempts


def test_a_writing_command_is_watched_too(lab, write_attempts):  # noqa: F811
    """The watch itself: a command that writes holds a connection that can (else the test above proves nothing)."""
    result = runner.invoke(app, ["catalog", "ingest", str(lab.parent / "card"), "--catalog", str(lab)])
    assert result.exit_code == 3, result.output
    assert write_attempts == ["written"]


def test_a_read_only_catalog_refuses_writes(lab):  # noqa: F811
    """`mode=ro` and `query_only`, each checked on its own. (The `immutable=1` open of a folder that cannot be
    written is held by test_catalog_trust.py's read-only mount test: as root, a chmod would not do.)"""
    with Catalog(lab, readonly=True) as cat:
        assert cat.counts()["assets"] == 2
        assert cat.conn.execute("PRAGMA query_only").fetchone()[0] == 1      # the second guard
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            cat.db["assets"].update(1, {"bytes": 0})
        assert _write_attempt(cat.conn) == READONLY


def test_upgrade_says_it_applied_a_skipped_migration(tmp_path, gap_catalog):
    db = gap_catalog(tmp_path / "gap.db")
    result = runner.invoke(app, ["catalog", "upgrade", "--catalog", str(db)])
    assert result.exit_code == 0, result.output
    last = MIGRATIONS[-1].version
    assert f"upgraded by the migration(s) it had skipped to {last}" in result.output
    assert f"from schema version {last}" not in result.output          # not "upgraded from 7 to 7"
    result = runner.invoke(app, ["catalog", "upgrade", "--catalog", str(db)])
    assert f"already at schema version {last}; nothing to do" in result.output

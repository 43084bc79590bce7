"""A team's server: the managed Label Studio on a real PostgreSQL (a throwaway cluster from the distribution's
package, conftest.py), the database URL remembered like the port and never shown with its password. The
push/pull/gate tests marked `both_databases` run against this server too."""

from __future__ import annotations

import json

import pytest

from annotate import review, server

from .conftest import PG_SESSION_DB, make_catalog, pg_root
from .test_review import run

pytestmark = [pytest.mark.labelstudio, pytest.mark.timeout(900)]


def test_a_team_server_keeps_everything_in_postgresql_and_remembers_it(ls_server_postgresql, pg_cluster, ls_root):
    root = pg_root(ls_root)
    cat = make_catalog(root, 2, name="team")
    path = str(cat.path)
    data = server.data_dir_for(cat.path)
    state_file = data / "server.json"
    assert json.loads(state_file.read_text())["database"] == pg_cluster.url(PG_SESSION_DB)
    assert state_file.stat().st_mode & 0o777 == 0o600
    assert not (data / "label_studio.sqlite3").exists()          # no SQLite beside it: the data is in PostgreSQL
    shown = f"postgresql://{pg_cluster.user}:***@127.0.0.1:{pg_cluster.port}/{PG_SESSION_DB}"

    res = review.push(cat, ls_server_postgresql)
    assert res.added == 2
    assert pg_cluster.sql(PG_SESSION_DB, f"SELECT count(*) FROM task WHERE project_id = {res.project_id}") == "2"

    r = run("review", "server", "status", "--catalog", path)
    assert r.exit_code == 0 and f"database: {shown}" in r.output and "health: UP" in r.output, r.output
    assert pg_cluster.password not in r.output
    r = run("review", "server", "start", "--catalog", path)      # already running: says so, with the database
    assert r.exit_code == 0 and f"on {shown};" in r.output and pg_cluster.password not in r.output, r.output
    r = run("review", "server", "start", "--catalog", path, "--database", "sqlite")
    assert r.exit_code == 1 and f"already runs on {shown}" in r.output, r.output

    # stopped and started again without --database: the same PostgreSQL database, the same projects
    assert server.stop(root / "anchor.db")
    r = run("review", "server", "start", "--catalog", path)
    assert r.exit_code == 0 and f"on {shown};" in r.output, r.output
    again = review.push(cat, server.connect(cat.path))
    assert (again.project_id, again.added, again.already) == (res.project_id, 0, 2)
    assert pg_cluster.sql(PG_SESSION_DB, f"SELECT count(*) FROM task WHERE project_id = {res.project_id}") == "2"
    cat.close()


def test_a_wrong_database_is_one_line_that_never_shows_the_password(pg_cluster, tmp_path):
    path = str(tmp_path / "lab.db")
    cases = [
        (f"postgresql://{pg_cluster.user}:not-the-pw-123@127.0.0.1:{pg_cluster.port}/{PG_SESSION_DB}",
         "password authentication failed"),                                     # Label Studio's own error, relayed
        ("postgresql://someone:not-the-pw-123@127.0.0.1:1/labels", "cannot reach PostgreSQL at 127.0.0.1:1"),
        ("mysql://someone:not-the-pw-123@127.0.0.1/labels", "only PostgreSQL (postgresql://) or sqlite"),
        ("postgresql://someone:not-the-pw-123@127.0.0.1:5432", "names no database name"),
        ("postgresql://someone:not-the-pw-123@127.0.0.1:5432/labels?sslmode=require", "options after the database"),
    ]
    try:
        for url, message in cases:
            r = run("review", "server", "start", "--catalog", path, "--database", url)
            errors = [line for line in r.output.splitlines() if line.startswith("error: ")]
            assert r.exit_code == 1 and len(errors) == 1 and message in errors[0], (url, r.output)
            assert "not-the-pw-123" not in r.output and "Traceback" not in r.output
        assert server.read_state(server.data_dir_for(tmp_path / "lab.db"))["pid"] is None
    finally:
        server.stop(tmp_path / "lab.db")    # should one have started after all


def test_database_urls_parse_into_label_studios_settings():
    db = server.parse_database("postgres://lab%40x:p%3Ass@[::1]/reviews")
    assert (db.user, db.password, db.host, db.port, db.name) == ("lab@x", "p:ss", "::1", 5432, "reviews")
    assert str(db) == "postgresql://lab@x:***@[::1]:5432/reviews" and "p:ss" not in repr(db)
    assert server.parse_database(db.url()) == db
    assert db.env()["LABEL_STUDIO_DJANGO_DB"] == "postgresql" and db.env()["LABEL_STUDIO_POSTGRE_PASSWORD"] == "p:ss"
    assert server.parse_database("sqlite") is None and server.parse_database(None) is None
    nopw = server.parse_database("postgresql://lab@db.example:6543/reviews")   # password from PGPASSWORD/.pgpass
    assert nopw.password == "" and nopw.port == 6543 and str(nopw) == "postgresql://lab@db.example:6543/reviews"

"""`cinectrl review server` against the session's real server: what answers at a URL is said plainly (not Label
Studio, a scheme mismatch, an IPv6 literal), `start` speaks of installing only when it installs, `status`
writes nothing, and the server's log holds each line once."""

from __future__ import annotations

import http.server
import threading
from collections import Counter

import pytest

from annotate import review, server

from .test_review import run

pytestmark = [pytest.mark.labelstudio, pytest.mark.timeout(600)]


@pytest.fixture()
def not_label_studio():
    """Python's own file server on a free port: something answers, and it is not Label Studio."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _one_error(r) -> str:
    errors = [line for line in r.output.splitlines() if line.startswith("error: ")]
    assert r.exit_code == 1 and len(errors) == 1 and "Traceback" not in r.output, r.output
    return errors[0]


def test_status_names_what_answered_when_it_is_not_label_studio(ls_server, catalog_factory, not_label_studio,
                                                                 monkeypatch):
    cat = catalog_factory(1)
    monkeypatch.setenv("CINECTRL_LS_URL", not_label_studio)
    monkeypatch.setenv("CINECTRL_LS_TOKEN", ls_server.token)
    r = run("review", "server", "status", "--catalog", str(cat.path))
    assert "health: NOT LABEL STUDIO" in r.output and "DOWN" not in r.output, r.output
    error = _one_error(r)
    assert "answered, but not as Label Studio (GET /health gave 404 text/html, server 'SimpleHTTP/" in error


def test_https_to_a_plain_http_server_says_the_scheme(ls_server, catalog_factory, monkeypatch):
    cat = catalog_factory(1)
    https = "https://" + ls_server.url.split("://", 1)[1]
    monkeypatch.setenv("CINECTRL_LS_URL", https)
    monkeypatch.setenv("CINECTRL_LS_TOKEN", ls_server.token)
    for command in (["review", "server", "status"], ["review", "push"]):
        error = _one_error(run(*command, "--catalog", str(cat.path)))
        assert "not over TLS: it speaks plain http" in error and f"use {ls_server.url} " in error, error
        assert "cannot reach" not in error


def test_an_ipv6_literal_url_is_one_clear_line(ls_server, catalog_factory, monkeypatch):
    assert server.canonical_url("HTTP://[::1]:8080/") == "http://[::1]:8080"
    assert server.canonical_url("https://[2001:DB8::1]:443/ls/") == "https://[2001:db8::1]/ls"
    cat = catalog_factory(1)
    port = ls_server.url.rsplit(":", 1)[1]          # the managed server listens on 127.0.0.1 only
    monkeypatch.setenv("CINECTRL_LS_URL", f"http://[::1]:{port}")
    monkeypatch.setenv("CINECTRL_LS_TOKEN", ls_server.token)
    for command in (["review", "server", "status"], ["review", "push"]):
        error = _one_error(run(*command, "--catalog", str(cat.path)))
        assert f"cannot reach Label Studio at http://[::1]:{port} " in error, error


def test_start_speaks_of_installing_only_when_it_installs(ls_server, ls_root, tmp_path, monkeypatch):
    r = run("review", "server", "start", "--catalog", str(ls_root / "anchor.db"))   # installed and running
    assert r.exit_code == 0 and "starting Label Studio..." in r.output and "install" not in r.output, r.output
    # Not installed: a venv folder with nothing in it. Installing needs the package index, which the tests do not
    # reach, so ensure_venv is replaced by a stand-in that refuses (the only mock here).
    monkeypatch.setenv("CINECTRL_LS_VENV", str(tmp_path / "empty-venv"))

    def refuse(venv=None):
        raise server.ServerError("no package index in this test")

    monkeypatch.setattr(server, "ensure_venv", refuse)
    r = run("review", "server", "start", "--catalog", str(tmp_path / "lab.db"))
    assert f"installing Label Studio into {tmp_path / 'empty-venv'} (first use" in r.output, r.output
    assert "no package index in this test" in _one_error(r)


def test_status_writes_nothing_to_the_catalog(ls_server, catalog_factory):
    cat = catalog_factory(1)
    review.push(cat, ls_server)
    cat.conn.execute("UPDATE ls_projects SET url = 'http://where-it-was-pushed:8080'")
    cat.conn.commit()
    before = "\n".join(cat.conn.iterdump())
    r = run("review", "server", "status", "--catalog", str(cat.path))
    assert r.exit_code == 0 and "review project" in r.output, r.output
    assert "\n".join(cat.conn.iterdump()) == before


def test_the_server_log_has_each_line_once(ls_server, ls_root):
    review_conn = server.identify(ls_server)
    for _ in range(3):
        server.request(review_conn, "GET", "/api/version", auth=False)
    lines = [ln for ln in (ls_root / ".labelstudio" / "server.log").read_text().splitlines()
             if "[django.server::" in ln]
    assert lines and sum('"GET /api/version' in ln for ln in lines) >= 3
    assert [ln for ln, n in Counter(lines).items() if n > 1] == [], "request lines written twice"

"""Review against a real Label Studio server (started once per session by conftest.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from label_studio_sdk import LabelStudio
from typer.testing import CliRunner

from annotate import review, server
from cinectrl.main import app

pytestmark = [pytest.mark.labelstudio, pytest.mark.timeout(600)]


def verdict(v: str, *, reasons=(), rating=None, ranges=(), notes=None) -> list[dict]:
    out = [{"from_name": "verdict", "to_name": "video_a", "type": "choices", "value": {"choices": [v]}}]
    if reasons:
        out.append({"from_name": "reasons", "to_name": "video_b", "type": "choices",
                    "value": {"choices": list(reasons)}})
    if rating is not None:
        out.append({"from_name": "effect_clarity", "to_name": "video_b", "type": "rating", "value": {"rating": rating}})
    if ranges:
        out.append({"id": "d1", "from_name": "defects", "to_name": "video_b", "type": "timelinelabels",
                    "value": {"ranges": [{"start": a, "end": b} for a, b in ranges],
                              "timelinelabels": ["defective"]}})
    if notes:
        out.append({"from_name": "notes", "to_name": "video_a", "type": "textarea", "value": {"text": [notes]}})
    return out


@pytest.fixture(scope="module")
def annotators(ls_server, ls_root, user_token):
    """Two real accounts, each annotating with its own token."""
    users = {}
    for email in ("alice@lab.test", "bob@lab.test", "carol@lab.test"):
        server.add_annotator(ls_root / "anchor.db", ls_server, email, "pw-" + email)
        users[email] = LabelStudio(base_url=ls_server.url, api_key=user_token(ls_server.url, email, "pw-" + email))
    return users


def _tasks(conn, project_id):
    return sorted(review.client(conn).tasks.list(project=project_id, fields="all"), key=lambda t: t.data["pair_id"])


def test_push_annotate_pull_agreement_adjudication_gate(ls_server, annotators, catalog_factory):
    cat = catalog_factory(3)
    res = review.push(cat, ls_server, overlap=2)
    assert (res.added, res.already) == (3, 0)
    tasks = _tasks(ls_server, res.project_id)
    assert [t.data["pair_id"] for t in tasks] == [1, 2, 3]
    assert tasks[0].predictions and tasks[0].predictions[0].model_version == "auto-qc"  # QC as pre-annotation
    alice, bob, carol = annotators["alice@lab.test"], annotators["bob@lab.test"], annotators["carol@lab.test"]
    alice.annotations.create(id=tasks[0].id, result=verdict("accept", rating=4, notes="clean"))
    bob.annotations.create(id=tasks[0].id, result=verdict("accept", rating=5))
    alice.annotations.create(id=tasks[1].id, result=verdict("reject", reasons=["flicker", "misaligned"],
                                                            ranges=[(2, 5), (8, 8)]))
    bob.annotations.create(id=tasks[1].id, result=verdict("accept", rating=3))
    alice.annotations.create(id=tasks[2].id, result=verdict("reject", reasons=["focus_missed"]))

    out = review.pull(cat, ls_server)
    assert (out.added, out.updated, out.adjudication_pushed) == (5, 0, 1)
    states = {p["pair_id"]: p["review_state"] for p in cat.pairs()}
    assert states == {1: "accepted", 2: "disputed", 3: "in_review"}   # pair 3 has 1 of 2 verdicts: no quorum
    r2 = {r["annotator"]: r for r in cat.reviews(2)}
    assert r2["alice@lab.test"]["reasons"] == ["flicker", "misaligned"]
    assert r2["alice@lab.test"]["defects"] == [[2, 5], [8, 8]]
    assert {r["annotator"]: r["rating"] for r in cat.reviews(1)} == {"alice@lab.test": 4, "bob@lab.test": 5}
    assert [p["pair_id"] for p in review.train_ready_pairs(cat)] == [1]

    ag = review.agreement(cat)
    assert ag["per_pair"] == {1: 1.0, 2: 0.0}
    assert ag["alpha"] is not None and ag["alpha"] < 1

    # second pull changes nothing; adjudication is not pushed twice
    again = review.pull(cat, ls_server)
    assert (again.added, again.updated, again.adjudication_pushed) == (0, 5, 0)
    assert len(cat.rows("SELECT id FROM reviews")) == 5

    # the adjudicator decides the split pair
    adj_id = cat.rows("SELECT project_id FROM ls_projects WHERE kind = 'adjudication'")[0]["project_id"]
    adj_tasks = _tasks(ls_server, adj_id)
    assert [t.data["pair_id"] for t in adj_tasks] == [2]
    carol.annotations.create(id=adj_tasks[0].id, result=verdict("accept"))
    bob.annotations.create(id=tasks[2].id, result=verdict("reject", reasons=["other"], notes="blurred"))
    review.pull(cat, ls_server)
    states = {p["pair_id"]: p["review_state"] for p in cat.pairs()}
    assert states == {1: "accepted", 2: "accepted", 3: "rejected"}
    assert [p["pair_id"] for p in review.train_ready_pairs(cat)] == [1, 2]


def test_push_is_idempotent_and_adds_only_new_pairs(ls_server, catalog_factory):
    cat = catalog_factory(2)
    first = review.push(cat, ls_server)
    assert (first.added, first.already) == (2, 0)
    assert (review.push(cat, ls_server).added) == 0
    # a new pair appears
    sid = cat.sessions()[0]["id"]
    clips = cat.clips(sid)
    cat.add_pair(sid, clips[1]["id"], clips[2]["id"])
    third = review.push(cat, ls_server)
    assert (third.added, third.already) == (1, 2)
    # tasks on the server that the catalog never recorded (a crash after import) are adopted, not duplicated
    cat.conn.execute("DELETE FROM ls_tasks WHERE project_id = ?", (first.project_id,))
    assert review.push(cat, ls_server).added == 0
    assert sorted(t.data["pair_id"] for t in _tasks(ls_server, first.project_id)) == [1, 2, 3]


def test_server_stopped_mid_push_then_rerun_completes_without_duplicates(ls_server, ls_root, catalog_factory,
                                                                        monkeypatch):
    cat = catalog_factory(9)
    anchor = ls_root / "anchor.db"
    port = int(ls_server.url.rsplit(":", 1)[1])
    real_client = review.client
    calls = {"n": 0}

    def stopping_client(conn):
        c = real_client(conn)
        real_import = c.projects.import_tasks

        def import_then_die(**kw):
            calls["n"] += 1
            if calls["n"] == 2:  # the server goes away between batches
                server.stop(anchor)
            return real_import(**kw)

        c.projects.import_tasks = import_then_die
        return c

    monkeypatch.setattr(review, "BATCH", 4)
    monkeypatch.setattr(review, "client", stopping_client)
    with pytest.raises(server.ServerError, match="cannot reach Label Studio") as err:
        review.push(cat, ls_server)
    assert ls_server.token not in str(err.value)
    monkeypatch.setattr(review, "client", real_client)
    conn = server.start(anchor, port=port)   # same data dir, same port
    res = review.push(cat, conn)
    assert (res.added, res.already) == (5, 4)
    assert sorted(t.data["pair_id"] for t in _tasks(conn, res.project_id)) == list(range(1, 10))


def test_wrong_token_is_a_clear_error_without_the_token(ls_server, ls_root, catalog_factory, monkeypatch):
    cat = catalog_factory(1)
    bad = "f" * 40
    monkeypatch.setenv("CINECTRL_LS_URL", ls_server.url)
    monkeypatch.setenv("CINECTRL_LS_TOKEN", bad)
    r = CliRunner().invoke(app, ["review", "push", "--catalog", str(cat.path)])
    assert r.exit_code == 1
    assert "refused the API token (401)" in r.output and bad not in r.output and "Traceback" not in r.output
    monkeypatch.delenv("CINECTRL_LS_TOKEN")
    r = CliRunner().invoke(app, ["review", "push", "--catalog", str(cat.path)])
    assert r.exit_code == 1 and "CINECTRL_LS_TOKEN is not" in r.output


def test_media_urls_are_served_with_auth_only(ls_server, catalog_factory):
    cat = catalog_factory(1)
    res = review.push(cat, ls_server)
    task = _tasks(ls_server, res.project_id)[0]
    for key in ("video_a", "video_b"):
        ok = httpx.get(ls_server.url + task.data[key], headers={"Authorization": f"Token {ls_server.token}"})
        assert ok.status_code == 200 and ok.headers["content-type"] == "video/mp4"
        assert ok.content == (cat.path.parent / task.data[key].split("?d=", 1)[1]).read_bytes()
        assert httpx.get(ls_server.url + task.data[key]).status_code == 401


def test_cli_server_status_push_pull_status(ls_server, ls_root, catalog_factory, annotators):
    cat = catalog_factory(2)
    runner = CliRunner()
    r = runner.invoke(app, ["review", "server", "status", "--catalog", str(cat.path)])
    assert r.exit_code == 0, r.output
    assert ls_server.url in r.output and "health: UP" in r.output and ls_server.token not in r.output
    r = runner.invoke(app, ["review", "push", "--catalog", str(cat.path), "--overlap", "1"])
    assert r.exit_code == 0 and "2 pairs added" in r.output, r.output
    pid = cat.rows("SELECT project_id FROM ls_projects WHERE kind = 'review'")[0]["project_id"]
    for t, v in zip(_tasks(ls_server, pid), ("accept", "reject")):
        annotators["alice@lab.test"].annotations.create(id=t.id, result=verdict(v))
    r = runner.invoke(app, ["review", "pull", "--catalog", str(cat.path)])
    assert r.exit_code == 0 and "2 reviews added" in r.output and "accepted 1" in r.output, r.output
    r = runner.invoke(app, ["review", "status", "--catalog", str(cat.path)])
    assert r.exit_code == 0 and "train-ready 1" in r.output and "alice@lab.test: 2 reviews" in r.output, r.output
    r = runner.invoke(app, ["review", "push", "--catalog", str(ls_root / "missing" / "none.db")])
    assert r.exit_code == 1 and "Traceback" not in r.output


def test_credentials_file_is_private(ls_server, ls_root):
    creds = ls_root / ".labelstudio" / "credentials.json"
    assert creds.stat().st_mode & 0o077 == 0


CANVAS_JS = """return [...document.querySelectorAll('canvas')].map(c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && d[i] < 200) n++;
  return n; });"""


def _chromium() -> tuple[str, str] | None:
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def test_browser_shows_both_videos_loaded(ls_server, ls_root, catalog_factory, tmp_path):
    """Headless Chromium logs in, opens a task: both <video> elements load and both players draw a frame
    (pixels counted on their canvases); the screenshot is kept under $CINECTRL_TEST_ARTIFACTS if set."""
    found = _chromium()
    if not found:
        pytest.skip("chromium + chromium-driver not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    cat = catalog_factory(1)
    res = review.push(cat, ls_server)
    task = _tasks(ls_server, res.project_id)[0]
    creds = server.credentials(ls_root / ".labelstudio")
    opts = webdriver.ChromeOptions()
    opts.binary_location = found[0]
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000",
                 "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(flag)
    drv = webdriver.Chrome(options=opts, service=Service(found[1]))
    try:
        drv.set_page_load_timeout(120)
        drv.get(ls_server.url + "/user/login/")
        drv.find_element(By.NAME, "email").send_keys(creds["user"])
        drv.find_element(By.NAME, "password").send_keys(creds["password"])
        drv.find_element(By.CSS_SELECTOR, "form button[type=submit], form input[type=submit]").click()
        WebDriverWait(drv, 60).until(lambda d: "/user/login" not in d.current_url)
        drv.get(f"{ls_server.url}/projects/{res.project_id}/data?task={task.id}")
        WebDriverWait(drv, 120, poll_frequency=1).until(lambda d: d.execute_script(
            "const v = [...document.querySelectorAll('video')];"
            "return v.length >= 2 && v.every(x => x.readyState >= 2 && x.videoWidth > 0);"))
        # the players draw frames onto canvases: both must show the clip's (dark) first frame
        WebDriverWait(drv, 60, poll_frequency=1).until(
            lambda d: (lambda n: len(n) >= 2 and all(x > 1000 for x in n))(d.execute_script(CANVAS_JS)))
        sources = drv.execute_script("return [...document.querySelectorAll('video')].map(v => v.currentSrc)")
        shot = tmp_path / "review.png"
        drv.save_screenshot(str(shot))
        out = os.environ.get("CINECTRL_TEST_ARTIFACTS")
        if out:
            shutil.copy(shot, Path(out) / "review-task.png")
        assert shot.stat().st_size > 10_000
        assert any("ref.mp4" in s for s in sources) and any("other0.mp4" in s for s in sources)
    finally:
        drv.quit()


def test_external_server_with_a_personal_access_token(ls_server, catalog_factory, monkeypatch):
    """A server >= 1.17 issues JWT personal access tokens (legacy tokens are off by default): push, pull (its
    raw export call included) must work with one, and a forged JWT must give the clear 401 error."""
    cat = catalog_factory(1)
    pat = review.client(ls_server).tokens.create().token
    assert pat.startswith("eyJ")
    monkeypatch.setenv("CINECTRL_LS_URL", ls_server.url)
    monkeypatch.setenv("CINECTRL_LS_TOKEN", pat)
    conn = server.connect(cat.path)
    res = review.push(cat, conn, overlap=1)
    assert res.added == 1
    ls = LabelStudio(base_url=ls_server.url, api_key=pat)
    task = _tasks(conn, res.project_id)[0]
    ls.annotations.create(id=task.id, result=verdict("accept", rating=3))
    out = review.pull(cat, conn)
    assert out.added == 1 and [p["pair_id"] for p in review.train_ready_pairs(cat)] == [task.data["pair_id"]]
    header, payload, _sig = pat.split(".")
    forged = f"{header}.{payload}.{'A' * 43}"
    monkeypatch.setenv("CINECTRL_LS_TOKEN", forged)
    r = CliRunner().invoke(app, ["review", "pull", "--catalog", str(cat.path)])
    assert r.exit_code == 1, r.output
    assert "refused the API token (401)" in r.output and forged not in r.output and "Traceback" not in r.output


def test_external_server_from_a_private_config_file(ls_server, catalog_factory, tmp_path, monkeypatch):
    """URL + token from the JSON file CINECTRL_LS_CONFIG names; a group/other-readable file is refused."""
    cat = catalog_factory(1)
    cfg = tmp_path / "ls.json"
    cfg.write_text(json.dumps({"url": ls_server.url, "token": ls_server.token}))
    cfg.chmod(0o644)
    monkeypatch.delenv("CINECTRL_LS_URL", raising=False)
    monkeypatch.delenv("CINECTRL_LS_TOKEN", raising=False)
    monkeypatch.setenv("CINECTRL_LS_CONFIG", str(cfg))
    r = CliRunner().invoke(app, ["review", "push", "--catalog", str(cat.path)])
    assert r.exit_code == 1 and "chmod 600" in r.output and ls_server.token not in r.output
    cfg.chmod(0o600)
    conn = server.connect(cat.path)
    assert conn.url == ls_server.url and conn.pid is None
    r = CliRunner().invoke(app, ["review", "push", "--catalog", str(cat.path)])
    assert r.exit_code == 0, r.output
    assert "1 pairs added" in r.output and ls_server.token not in r.output
    monkeypatch.setenv("CINECTRL_LS_CONFIG", str(tmp_path / "missing.json"))
    r = CliRunner().invoke(app, ["review", "push", "--catalog", str(cat.path)])
    assert r.exit_code == 1 and "no such file" in r.output

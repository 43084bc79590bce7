"""Review against a real Label Studio server (started once per session by conftest.py), as a lab lead and
reviewers would use it: accounts, push, verdicts through each reviewer's own token, pull, the gate."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from label_studio_sdk import LabelStudio
from typer.testing import CliRunner

from annotate import accounts, gate, report, review, server
from annotate.config import PROJECT_SETTINGS
from cinectrl.main import app

from .conftest import NETAUDIT, login, make_catalog

pytestmark = [pytest.mark.labelstudio, pytest.mark.timeout(600)]


def verdict(v: str | None, *, reasons=(), rating=None, ranges=(), notes=None) -> list[dict]:
    out = [] if v is None else [{"from_name": "verdict", "to_name": "video_a", "type": "choices",
                                 "value": {"choices": [v]}}]
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


def sdk(url: str, person) -> LabelStudio:
    return LabelStudio(base_url=url, api_key=person.token)


def register(cat, conn, people, **roles) -> None:
    """Register existing accounts in this catalog: register(cat, conn, people, alice="annotator", ...)."""
    conn = server.identify(conn)
    for name, role in roles.items():
        res = accounts.add(cat, conn, people[name].email, role=role)
        assert not res.created


def tasks_of(conn, project_id) -> dict[int, object]:
    """pair id -> task."""
    return {t.data["pair_id"]: t for t in review.client(conn).tasks.list(project=project_id, fields="all")}


def states(cat) -> dict[int, str]:
    return {p["pair_id"]: p["review_state"] for p in cat.pairs()}


def decide_first_pair(cat, conn, people, ls_server) -> int:
    """Push a 2-pair catalog through `conn`, have alice and bob accept pair 1, pull: pair 1 decided."""
    register(cat, ls_server, people, alice="annotator", bob="annotator")
    res = review.push(cat, conn)
    t = tasks_of(ls_server, res.project_id)
    for name in ("alice", "bob"):
        sdk(ls_server.url, people[name]).annotations.create(id=t[1].id, result=verdict("accept"))
    review.pull(cat, conn)
    assert states(cat) == {1: "accepted", 2: "in_review"}
    return res.project_id


def run(*args, env: dict | None = None, input: str | None = None):
    return CliRunner().invoke(app, list(args), env=env, input=input)


# ------------------------------------------------------------------------------------------- verdicts, gate

def test_fresh_task_has_no_verdict_and_qc_is_only_information(ls_server, catalog_factory, people):
    cat = catalog_factory(2)
    res = review.push(cat, ls_server)
    project = server.request(server.identify(ls_server), "GET", f"/api/projects/{res.project_id}/").json()
    for key, value in PROJECT_SETTINGS.items():
        assert project[key] == value, key
    assert project["maximum_annotations"] == 2 and "<Choices name=\"verdict\"" in project["label_config"]
    for task in tasks_of(ls_server, res.project_id).values():
        assert not task.predictions and not task.annotations        # nothing pre-selected, nothing pre-filled
        assert "Automatic check" in task.data["qc_html"] and "0.20 px" in task.data["qc_html"]
        assert "passed" not in task.data["qc_html"]
        assert task.data["change"].startswith("aperture f/8 -> f/2.8")
        assert task.data["title_a"].startswith("Reference: f/8")
    # an annotation without a verdict (possible through the API, refused by the view) is no verdict at all
    register(cat, ls_server, people, alice="annotator")
    t = next(iter(tasks_of(ls_server, res.project_id).values()))
    sdk(ls_server.url, people["alice"]).annotations.create(id=t.id, result=verdict(None, rating=4))
    out = review.pull(cat, ls_server)
    assert out.added == 0 and not cat.rows("SELECT id FROM reviews")


@pytest.mark.both_databases
def test_push_vote_pull_adjudicate_gate(ls_server, catalog_factory, people):
    cat = catalog_factory(3)
    register(cat, ls_server, people, alice="annotator", bob="annotator", erin="annotator", carol="adjudicator",
             dave="adjudicator")
    res = review.push(cat, ls_server)
    assert (res.added, res.already, res.overlap) == (3, 0, 2)
    t = tasks_of(ls_server, res.project_id)
    a, b, c, d, e = (sdk(ls_server.url, people[n]) for n in ("alice", "bob", "carol", "dave", "erin"))
    a.annotations.create(id=t[1].id, result=verdict("accept", rating=4), lead_time=3.0)
    b.annotations.create(id=t[1].id, result=verdict("accept", rating=5), lead_time=5.0)
    a.annotations.create(id=t[2].id, result=verdict("reject", reasons=["flicker", "misaligned"],
                                                    ranges=[(2, 5), (8, 8)], notes="flickers at the start"))
    b.annotations.create(id=t[2].id, result=verdict("accept"))
    c.annotations.create(id=t[3].id, result=verdict("reject", reasons=["focus_missed"]))   # an adjudicator reviewing
    e.annotations.create(id=t[3].id, result=verdict("accept"))

    out = review.pull(cat, ls_server)
    assert (out.added, out.updated, out.adjudication_pushed, out.adjudication_refreshed) == (6, 0, 2, 0)
    assert states(cat) == {1: "accepted", 2: "disputed", 3: "disputed"}
    p1 = cat.rows("SELECT decided_by, adjudicated_by, decided_at FROM pairs WHERE id = 1")[0]
    assert json.loads(p1["decided_by"]) == ["alice@lab.test", "bob@lab.test"] and p1["adjudicated_by"] is None
    r2 = {r["annotator"]: r for r in cat.reviews(2)}
    assert r2["alice@lab.test"]["reasons"] == ["flicker", "misaligned"]
    assert r2["alice@lab.test"]["defects"] == [[2, 5], [8, 8]]
    assert {r["annotator"]: r["lead_time_s"] for r in cat.reviews(1)} == {"alice@lab.test": 3.0, "bob@lab.test": 5.0}
    assert [p["pair_id"] for p in review.train_ready_pairs(cat)] == [1]

    # the adjudicator sees every earlier verdict: account, verdict, reasons, defect frames, notes
    adj_project = review._projects(cat, server.identify(ls_server).key)["adjudication"][0]
    adj = tasks_of(ls_server, adj_project)
    assert sorted(adj) == [2, 3]
    earlier = adj[2].data["earlier_html"]
    for text in ("alice@lab.test", "bob@lab.test", "reject", "accept", "flicker, misaligned", "2-5, 8",
                 "flickers at the start"):
        assert text in earlier
    # an annotator cannot settle a split; an adjudicator who voted on the pair cannot either
    a.annotations.create(id=adj[2].id, result=verdict("reject"))
    c.annotations.create(id=adj[3].id, result=verdict("reject"))
    assert review.pull(cat, ls_server).adjudication_refreshed == 0      # no earlier verdict changed
    assert states(cat) == {1: "accepted", 2: "disputed", 3: "disputed"}
    notes = dict(cat.conn.execute("SELECT annotator, gate_note FROM reviews WHERE stage = 'adjudication'"))
    assert notes == {"alice@lab.test": gate.NOT_ADJUDICATOR, "carol@lab.test": gate.ADJUDICATOR_VOTED}
    # a reviewer adds a note to their verdict: the open adjudication task shows it
    erin_ann = [x for x in e.annotations.list(id=t[3].id) if x.completed_by == people["erin"].user_id][0]
    e.annotations.update(id=erin_ann.id, result=verdict("accept", notes="sharp enough for me"))
    assert review.pull(cat, ls_server).adjudication_refreshed == 1
    assert "sharp enough for me" in tasks_of(ls_server, adj_project)[3].data["earlier_html"]
    # an adjudicator who did not vote decides, and the catalog says who
    d.annotations.create(id=adj[2].id, result=verdict("accept"))
    d.annotations.create(id=adj[3].id, result=verdict("reject", reasons=["focus_missed"]))
    review.pull(cat, ls_server)
    assert states(cat) == {1: "accepted", 2: "accepted", 3: "rejected"}
    p2 = cat.rows("SELECT decided_by, adjudicated_by FROM pairs WHERE id = 2")[0]
    assert json.loads(p2["adjudicated_by"]) == ["dave@lab.test"] == json.loads(p2["decided_by"])
    assert [p["pair_id"] for p in review.train_ready_pairs(cat)] == [1, 2]

    # a pull that changed nothing says so and touches no row
    before = cat.conn.total_changes
    again = review.pull(cat, ls_server)
    assert again.nothing_changed and again.unchanged == 10 and cat.conn.total_changes == before
    r = run("review", "pull", "--catalog", str(cat.path))
    assert r.exit_code == 0 and "nothing changed: 10 verdicts already up to date" in r.output, r.output


@pytest.mark.both_databases
def test_one_account_one_vote_and_forged_or_edited_verdicts_do_not_count(ls_server, catalog_factory, people):
    cat = catalog_factory(2)
    register(cat, ls_server, people, alice="annotator", bob="annotator")
    res = review.push(cat, ls_server)
    t = tasks_of(ls_server, res.project_id)
    a, b, e = (sdk(ls_server.url, people[n]) for n in ("alice", "bob", "eve"))
    a.annotations.create(id=t[1].id, result=verdict("accept"))
    a.annotations.create(id=t[1].id, result=verdict("accept"))           # the same account twice
    e.annotations.create(id=t[1].id, result=verdict("accept"))           # an account nobody registered
    review.pull(cat, ls_server)
    assert states(cat)[1] == "in_review"                                 # one counted account < quorum 2
    # bob writes a verdict and credits it to alice (Label Studio allows it, even with updated_by = alice asked for);
    # then he edits alice's own verdict
    b.annotations.create(id=t[2].id, result=verdict("reject"), completed_by=people["alice"].user_id,
                         updated_by=people["alice"].user_id)
    alice_own = a.annotations.create(id=t[2].id, result=verdict("accept"))
    httpx.patch(f"{ls_server.url}/api/annotations/{alice_own.id}/",
                json={"result": verdict("reject"), "updated_by": people["alice"].user_id},
                headers={"Authorization": f"Token {people['bob'].token}"}).raise_for_status()
    b.annotations.create(id=t[2].id, result=verdict("reject"))
    out = review.pull(cat, ls_server)
    assert states(cat) == {1: "in_review", 2: "in_review"}
    assert out.ignored == {gate.SUPERSEDED: 1, gate.UNREGISTERED: 1,
                           gate.EDITED.format(user=people["bob"].email): 2}
    # status lists what bob wrote under bob, not under alice whom he credited it to
    not_counted = {r["account"]: r["not_counted"] for r in report.summary(cat)["reviewers"]}
    assert not_counted == {"alice@lab.test": 1, "bob@lab.test": 2, "eve@lab.test": 1}   # alice: her own duplicate
    recs = [r for r in run_export(cat, "jsonl") if r["pair_id"] == 2]
    assert sorted((r["account"], r["counted"]) for r in recs) == [
        ("alice@lab.test", False), ("alice@lab.test", False), ("bob@lab.test", True)]
    # alice puts her own verdict back: counted again
    a.annotations.update(id=alice_own.id, result=verdict("reject"))
    review.pull(cat, ls_server)
    assert states(cat)[2] == "rejected"
    # a task imported by hand with a pair id in its data is not a task cinectrl pushed: never read
    fake = b.projects.import_tasks(id=res.project_id, request=[{"data": {**t[1].data}}], return_task_ids=True)
    for who in (a, b):
        who.annotations.create(id=fake.task_ids[0], result=verdict("accept"))
    out = review.pull(cat, ls_server)
    assert out.foreign_tasks == 1 and out.added == 0 and states(cat)[1] == "in_review"


def run_export(cat, fmt: str) -> list[dict]:
    r = run("catalog", "export", "--what", "reviews", "--format", fmt, "--catalog", str(cat.path))
    assert r.exit_code == 0, r.output
    if fmt == "jsonl":
        return [json.loads(line) for line in r.output.splitlines() if line.strip()]
    return list(csv.DictReader(io.StringIO(r.output)))


def test_what_community_edition_cannot_enforce_is_real(ls_server, catalog_factory, people):
    """The threat model in docs/review.md, checked: any member's token reads others' verdicts, the adjudication
    project and the invite link, and changes project settings. (If a Label Studio upgrade closes one of these,
    this test says so and the docs should follow.)"""
    cat = catalog_factory(1)
    register(cat, ls_server, people, alice="annotator", bob="annotator")
    res = review.push(cat, ls_server)
    t = tasks_of(ls_server, res.project_id)[1]
    sdk(ls_server.url, people["bob"]).annotations.create(id=t.id, result=verdict("reject", notes="bob's"))
    alice = httpx.Client(base_url=ls_server.url, headers={"Authorization": f"Token {people['alice'].token}"})
    seen = alice.get(f"/api/tasks/{t.id}").json()["annotations"]
    assert [review._user_id(a["completed_by"]) for a in seen] == [people["bob"].user_id]   # others' verdicts: readable
    assert alice.get("/api/invite").json()["token"]                                 # the invite link: readable
    assert alice.patch(f"/api/projects/{res.project_id}/", json={"show_skip_button": True}).status_code == 200
    assert review.pull(cat, ls_server).restored == ["review.show_skip_button"]     # ...and put back


# ------------------------------------------------------------------------------------------- gold, status, export

def test_gold_tasks_measure_each_reviewer_and_never_train(ls_server, catalog_factory, people):
    cat = catalog_factory(4)
    register(cat, ls_server, people, alice="annotator", bob="annotator")
    res = review.push(cat, ls_server, gold_rate=0.5, seed=7)
    assert (res.added, res.gold) == (4, 2)
    golds = {p["pair_id"]: p for p in review.review_pairs(cat) if p["gold_kind"]}
    assert len(golds) == 2
    t = tasks_of(ls_server, res.project_id)
    assert set(t) == {1, 2, 3, 4, *golds}
    for pid in golds:   # a gold task looks like any other: no marker in its data
        assert set(t[pid].data) == set(t[1].data) and "gold" not in json.dumps(t[pid].data)
    a, b = sdk(ls_server.url, people["alice"]), sdk(ls_server.url, people["bob"])
    for pid, task in t.items():
        if pid in golds:
            a.annotations.create(id=task.id, result=verdict("reject", reasons=[
                {"shift": "misaligned", "flicker": "flicker", "swap": "scene_changed"}[golds[pid]["gold_kind"]]]),
                lead_time=8.0)
        else:
            a.annotations.create(id=task.id, result=verdict("accept"), lead_time=4.0)
        b.annotations.create(id=task.id, result=verdict("accept"), lead_time=2.0)   # bob accepts everything
    review.pull(cat, ls_server)
    assert [p["pair_id"] for p in review.train_ready_pairs(cat)] == [1, 2, 3, 4]
    r = run("review", "status", "--json", "--catalog", str(cat.path))
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    by = {x["account"]: x for x in s["reviewers"]}
    assert (by["alice@lab.test"]["gold_accuracy"], by["bob@lab.test"]["gold_accuracy"]) == (1.0, 0.0)
    assert by["alice@lab.test"]["gold_reason_accuracy"] == 1.0
    assert by["alice@lab.test"]["tasks"] == 6 and by["bob@lab.test"]["gold_tasks"] == 2
    assert by["alice@lab.test"]["agreement_with_peers"] == 1.0 and by["alice@lab.test"]["peer_pairs"] == 4
    assert by["alice@lab.test"]["median_lead_time_s"] == 4.0 and by["bob@lab.test"]["median_lead_time_s"] == 2.0
    assert sum(by["alice@lab.test"]["reasons"].values()) == 2
    assert s["train_ready"] == 4 and sum(s["gold_pairs"].values()) == 2
    # gold pairs bob and a second careless reviewer both accept still never become train-ready
    register(cat, ls_server, people, erin="annotator")
    e = sdk(ls_server.url, people["erin"])
    for pid in golds:
        a_ann = [x for x in a.annotations.list(id=t[pid].id) if x.completed_by == people["alice"].user_id][0]
        a.annotations.update(id=a_ann.id, result=verdict("accept"))
        e.annotations.create(id=t[pid].id, result=verdict("accept"))
    review.pull(cat, ls_server)
    gold_rows = cat.rows("SELECT review_state, train_ready FROM pairs WHERE gold_kind IS NOT NULL")
    assert gold_rows == [{"review_state": "accepted", "train_ready": 0}] * 2
    assert [p["pair_id"] for p in review.train_ready_pairs(cat)] == [1, 2, 3, 4]
    r = run("review", "status", "--catalog", str(cat.path))
    assert r.exit_code == 0 and "alice@lab.test (annotator): " in r.output and "gold 0/2 (0%)" in r.output, r.output


def test_export_reviews_csv_and_jsonl(ls_server, catalog_factory, people, tmp_path, monkeypatch):
    cat = catalog_factory(1)
    register(cat, ls_server, people, alice="annotator", bob="annotator")
    res = review.push(cat, ls_server)
    t = tasks_of(ls_server, res.project_id)[1]
    sdk(ls_server.url, people["alice"]).annotations.create(
        id=t.id, result=verdict("reject", reasons=["flicker"], ranges=[(1, 3)], notes="flicker, frame 1"),
        lead_time=6.5)
    sdk(ls_server.url, people["bob"]).annotations.create(id=t.id, result=verdict("reject"), lead_time=1.5)
    review.pull(cat, ls_server)
    rows = run_export(cat, "jsonl")
    alice = next(r for r in rows if r["account"] == "alice@lab.test")
    assert alice["verdict"] == "reject" and alice["reasons"] == "flicker" and alice["defects"] == "1-3"
    assert alice["notes"] == "flicker, frame 1" and alice["lead_time_s"] == 6.5 and alice["counted"] is True
    assert alice["role"] == "annotator" and alice["stage"] == "review" and alice["created_at"].endswith("+00:00")
    assert alice["pair_state"] == "rejected" and alice["decided_by"] == "alice@lab.test; bob@lab.test"
    assert set(alice) == set(review_fields())
    rows = run_export(cat, "csv")
    alice = next(r for r in rows if r["account"] == "alice@lab.test")
    assert alice["defects"] == "1-3" and alice["adjudicated_by"] == "" and alice["counted"] == "true"   # no JSON in CSV
    # `-o -` is stdout, not a file named "-"; a file of reviews (e-mails, notes) is readable by its owner only
    monkeypatch.chdir(tmp_path)
    r = run("catalog", "export", "--what", "reviews", "-o", "-", "--catalog", str(cat.path))
    assert r.exit_code == 0 and "alice@lab.test" in r.output and not (tmp_path / "-").exists()
    (tmp_path / "reviews.jsonl").write_text("")
    (tmp_path / "reviews.jsonl").chmod(0o644)
    r = run("catalog", "export", "--what", "reviews", "-o", "reviews.jsonl", "--catalog", str(cat.path))
    assert r.exit_code == 0 and (tmp_path / "reviews.jsonl").stat().st_mode & 0o777 == 0o600
    assert "alice@lab.test" in (tmp_path / "reviews.jsonl").read_text()


def review_fields():
    from capture.export import EXPORTS
    return EXPORTS["reviews"].names


# ------------------------------------------------------------------------------------------- projects, overlap

@pytest.mark.both_databases
def test_overlap_on_an_existing_project_updates_or_refuses(ls_server, catalog_factory, people):
    cat = catalog_factory(2)
    register(cat, ls_server, people, alice="annotator")
    r = run("review", "push", "--catalog", str(cat.path))
    assert r.exit_code == 0 and "(2 verdicts per pair)" in r.output, r.output
    r = run("review", "push", "--overlap", "3", "--catalog", str(cat.path))   # no verdicts yet: updated
    assert r.exit_code == 0 and "(3 verdicts per pair)" in r.output, r.output
    conn = server.identify(ls_server)
    project_id, overlap = review._projects(cat, conn.key)["review"]
    assert overlap == 3 and server.request(conn, "GET", f"/api/projects/{project_id}/").json()[
        "maximum_annotations"] == 3
    t = tasks_of(ls_server, project_id)
    sdk(ls_server.url, people["alice"]).annotations.create(id=t[1].id, result=verdict("accept"))
    r = run("review", "push", "--overlap", "2", "--catalog", str(cat.path))
    assert r.exit_code == 1 and "already collects 3 verdicts per pair" in r.output and "Traceback" not in r.output
    # an annotator turns the overlap down to 1 on the server: the gate keeps the catalog's quorum and pull
    # puts the setting back
    alice = httpx.Client(base_url=ls_server.url, headers={"Authorization": f"Token {people['alice'].token}"})
    alice.patch(f"/api/projects/{project_id}/", json={"maximum_annotations": 1, "show_annotation_history": True}
                ).raise_for_status()
    out = review.pull(cat, ls_server)
    assert out.restored == ["review.maximum_annotations", "review.show_annotation_history"]
    assert states(cat)[1] == "in_review"
    assert server.request(conn, "GET", f"/api/projects/{project_id}/").json()["maximum_annotations"] == 3


@pytest.mark.both_databases
def test_push_is_idempotent_and_adds_only_new_pairs(ls_server, catalog_factory):
    cat = catalog_factory(2)
    first = review.push(cat, ls_server)
    assert (first.added, first.already) == (2, 0)
    assert review.push(cat, ls_server).added == 0
    sid = cat.sessions()[0]["id"]
    clips = cat.clips(sid)
    cat.add_pair(sid, clips[1]["id"], clips[2]["id"])
    third = review.push(cat, ls_server)
    assert (third.added, third.already) == (1, 2)
    # tasks on the server that the catalog never recorded (a crash after import) are adopted, not duplicated
    cat.conn.execute("DELETE FROM ls_tasks WHERE project_id = ?", (first.project_id,))
    assert review.push(cat, ls_server).added == 0
    assert sorted(tasks_of(ls_server, first.project_id)) == [1, 2, 3]


def test_server_stopped_mid_push_then_rerun_completes_without_duplicates(ls_server, ls_root, catalog_factory,
                                                                        monkeypatch):
    cat = catalog_factory(9)
    anchor = ls_root / "anchor.db"
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
    os.environ.update({"PYTHONPATH": str(NETAUDIT), "CINECTRL_NETAUDIT_LOG": str(ls_root / "netaudit.log")})
    try:
        conn = server.start(anchor, boot_timeout=240)   # the port is remembered: same URL
    finally:
        os.environ.pop("PYTHONPATH"), os.environ.pop("CINECTRL_NETAUDIT_LOG")
    assert conn.url == ls_server.url
    res = review.push(cat, conn)
    assert (res.added, res.already) == (5, 4)
    assert sorted(tasks_of(conn, res.project_id)) == list(range(1, 10))


@pytest.mark.both_databases
def test_media_urls_are_served_with_auth_only(ls_server, catalog_factory):
    cat = catalog_factory(1)
    res = review.push(cat, ls_server)
    task = tasks_of(ls_server, res.project_id)[1]
    for key in ("video_a", "video_b", "video_diff"):
        ok = httpx.get(ls_server.url + task.data[key], headers={"Authorization": f"Token {ls_server.token}"})
        assert ok.status_code == 200 and ok.headers["content-type"] == "video/mp4"
        assert ok.content == (cat.path.parent / task.data[key].split("?d=", 1)[1]).read_bytes()
        assert httpx.get(ls_server.url + task.data[key]).status_code == 401


# ------------------------------------------------------------------------------------------- server identity

LEGACY_CONFIG = """<View>
  <Video name="video_a" value="$video_a" sync="pair" frameRate="$fps"/>
  <Video name="video_b" value="$video_b" sync="pair" frameRate="$fps"/>
  <Choices name="verdict" toName="video_a" choice="single-radio" required="true">
    <Choice value="accept"/><Choice value="reject"/></Choices>
  <TextArea name="notes" toName="video_a"/>
</View>"""


def test_one_server_whatever_url_reaches_it(ls_server, catalog_factory, people, monkeypatch):
    """The local server found through the catalog, and the same server by URL (localhost, trailing slash), are
    one server: no task is pushed twice and no decided pair goes back to review."""
    cat = catalog_factory(2)
    project_id = decide_first_pair(cat, server.connect(cat.path), people, ls_server)
    port = ls_server.url.rsplit(":", 1)[1]
    for url in (f"http://localhost:{port}/", f"HTTP://127.0.0.1:{port}"):
        monkeypatch.setenv("CINECTRL_LS_URL", url)
        monkeypatch.setenv("CINECTRL_LS_TOKEN", ls_server.token)
        r = run("review", "push", "--catalog", str(cat.path))
        assert r.exit_code == 0 and "0 pairs added, 2 already there" in r.output, r.output
        r = run("review", "pull", "--catalog", str(cat.path))
        assert r.exit_code == 0 and "nothing changed" in r.output, r.output
    assert states(cat) == {1: "accepted", 2: "in_review"} and len(tasks_of(ls_server, project_id)) == 2


def test_projects_recorded_by_an_older_cinectrl_are_adopted_and_lose_their_prefilled_verdict(
        ls_server, catalog_factory, people):
    """A catalog from before instance keys named the local server 'local' and pushed tasks with the QC as a
    pre-selected verdict: the new push finds that project (no duplicates), removes the pre-annotations and
    gives it the current view."""
    cat = catalog_factory(1)
    conn = server.identify(ls_server)
    p = server.request(conn, "POST", "/api/projects/", json={"title": "cinectrl pair review",
                                                              "label_config": LEGACY_CONFIG,
                                                              "maximum_annotations": 2}).json()
    pair = cat.pairs()[0]
    task = {"data": {"pair_id": 1, "video_a": "/data/local-files/?d=" + pair["reference_path"],
                     "video_b": "/data/local-files/?d=" + pair["other_path"], "fps": 24},
            "predictions": [{"model_version": "auto-qc", "result": [
                {"from_name": "verdict", "to_name": "video_a", "type": "choices", "value": {"choices": ["accept"]}}]}]}
    ids = review.client(conn).projects.import_tasks(id=p["id"], request=[task], return_task_ids=True).task_ids
    cat.conn.execute("INSERT INTO ls_projects (kind, server, project_id) VALUES ('review', 'local', ?)", (p["id"],))
    cat.conn.execute("INSERT INTO ls_tasks (server, project_id, task_id, pair_id, kind) VALUES "
                     "('local', ?, ?, 1, 'review')", (p["id"], ids[0]))
    res = review.push(cat, ls_server)
    assert (res.project_id, res.added, res.already) == (p["id"], 0, 1)
    assert "label_config" in res.restored
    t = tasks_of(ls_server, p["id"])[1]
    assert not t.predictions and t.data["change"] == "aperture f/8 -> f/2.8" and "video_diff" in t.data
    assert cat.rows("SELECT DISTINCT server FROM ls_tasks") == [{"server": conn.key}]


# ------------------------------------------------------------------------------------------- a second server

def _cli(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([str(Path(sys.executable).with_name("cinectrl")), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _modes(folder: Path) -> list[str]:
    loose = []
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            want = 0o700 if path.is_dir() else 0o600
            if not path.is_symlink() and path.stat().st_mode & 0o777 != want:
                loose.append(f"{path} {oct(path.stat().st_mode & 0o777)}")
    return loose


@pytest.mark.slow
def test_a_second_server_concurrent_starts_private_data_port_and_decided_pairs(ls_server, ls_root, people,
                                                                              tmp_path):
    """A fresh server: two `server start` at once make one server; its data dir is private; it reaches no
    other host; its port is remembered; pushing decided pairs to it changes none of them."""
    root = ls_root / f"second-{os.getpid()}-{tmp_path.name}"
    root.mkdir()
    catalog = root / "lab.db"
    audit = root / "netaudit.log"
    env = {**os.environ, "PYTHONPATH": str(NETAUDIT), "CINECTRL_NETAUDIT_LOG": str(audit)}
    starts = [_cli("review", "server", "start", "--catalog", str(catalog), env=env) for _ in range(2)]
    try:
        outputs = [p.communicate(timeout=400)[0] for p in starts]
        assert all(p.returncode == 0 for p in starts), outputs
        ups = [line for out in outputs for line in out.splitlines() if line.startswith("Label Studio up at")]
        assert len(ups) == 2 and ups[0] == ups[1], outputs       # the same URL and PID for both
        data = server.data_dir_for(catalog)
        state = server.read_state(data)
        assert f"(PID {state['pid']})" in ups[0]
        assert data.stat().st_mode & 0o777 == 0o700 and _modes(data) == []
        second = server.Connection(state["url"], server.credentials(data)["token"], state["pid"])
        # pages and the API load; nothing tried to reach another host, nothing to Sentry in the log
        with contextlib.closing(login(second.url, server.credentials(data)["user"],
                                      server.credentials(data)["password"])) as web:
            assert web.get("/projects/").status_code == 200
        assert not audit.exists() or audit.read_text() == ""
        assert "sentry" not in (data / "server.log").read_text().lower()
        # the audit hook does see an attempt when there is one: a webhook to a host that is not this machine
        probe = server.request(server.identify(second), "POST", "/api/projects/", json={"title": "probe"}).json()
        httpx.post(f"{second.url}/api/webhooks/", json={"project": probe["id"], "url": "http://example.invalid/x"},
                   headers={"Authorization": f"Token {second.token}"})
        assert "example.invalid" in audit.read_text()

        # decided pairs stay decided when pushed to this new server
        cat = make_catalog(root, 2, name="moved")
        decide_first_pair(cat, ls_server, people, ls_server)
        moved = review.push(cat, second)
        assert moved.added == 2 and states(cat) == {1: "accepted", 2: "in_review"}
        review.pull(cat, second)
        assert states(cat) == {1: "accepted", 2: "in_review"} and review.train_ready_pairs(cat)[0]["pair_id"] == 1
        cat.close()
        assert _modes(data) == []      # what the running server wrote since (its export files) is private too

        # the port is remembered across a stop; a port taken by another program is a clear error
        port = state["port"]
        assert server.stop(catalog) and server.read_state(data)["port"] == port
        with socket.socket() as squatter:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # our own last run's TIME_WAIT
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            r = run("review", "server", "start", "--catalog", str(catalog))
            assert r.exit_code == 1 and f"port {port} on 127.0.0.1 is in use" in r.output, r.output
        r = run("review", "server", "start", "--catalog", str(catalog), env={"PYTHONPATH": str(NETAUDIT)})
        assert r.exit_code == 0 and f"up at http://127.0.0.1:{port} " in r.output, r.output
    finally:
        for p in starts:
            if p.poll() is None:
                p.kill()
        server.stop(catalog)


# ------------------------------------------------------------------------------------------- accounts

def test_annotator_accounts_cli_add_list_remove(ls_server, catalog_factory, people):
    cat = catalog_factory(1)
    path = str(cat.path)
    frank, grace = f"frank{os.getpid()}@lab.test", f"grace{os.getpid()}@lab.test"   # unique: a kept server too
    r = run("review", "annotators", "add", frank, "--generate-password", "--catalog", path)
    assert r.exit_code == 0 and f"created {frank}" in r.output and "as annotator" in r.output, r.output
    password = next(line.split(": ", 1)[1] for line in r.output.splitlines() if line.startswith("password: "))
    login(ls_server.url, frank, password).close()            # the shown password works
    r = run("review", "annotators", "add", grace, "--role", "adjudicator", "--catalog", path,
            input="grace-secret-1\ngrace-secret-1\n")
    assert r.exit_code == 0 and f"created {grace}" in r.output and "grace-secret-1" not in r.output
    login(ls_server.url, grace, "grace-secret-1").close()
    r = run("review", "annotators", "add", frank, "--role", "adjudicator", "--catalog", path)
    assert r.exit_code == 0 and "(was annotator)" in r.output and "password is unchanged" in r.output
    r = run("review", "annotators", "add", "not-an-email", "--generate-password", "--catalog", path)
    assert r.exit_code == 1 and "is not an email address" in r.output
    r = run("review", "annotators", "add", "not-an-email", "--catalog", path, input="whatever-1\nwhatever-1\n")
    assert r.exit_code == 1 and "is not an email address" in r.output and "password for" not in r.output
    heidi = f"heidi{os.getpid()}@lab.test"
    r = run("review", "annotators", "add", heidi, "--catalog", path, input="abcde\nabcde\n")
    assert r.exit_code == 1 and "a password of 5 characters is refused: Label Studio needs 8 to 128" in r.output
    assert heidi not in accounts.server_users(server.identify(ls_server)).values()   # nothing sent
    r = run("review", "annotators", "list", "--catalog", path)
    assert r.exit_code == 0 and frank in r.output and "adjudicator" in r.output, r.output
    # removal: out of the organization (no project opens), and the catalog keeps the account as removed
    res = review.push(cat, ls_server)
    web = login(ls_server.url, frank, password)
    assert web.get(f"/api/projects/{res.project_id}/").status_code == 200
    r = run("review", "annotators", "remove", frank, "--catalog", path)
    assert r.exit_code == 0 and f"removed {frank}" in r.output, r.output
    assert web.get(f"/api/projects/{res.project_id}/").status_code in (403, 404)
    web.close()
    r = run("review", "annotators", "list", "--catalog", path)
    assert "removed" in r.output.split(frank, 1)[1].splitlines()[0]
    r = run("review", "annotators", "add", frank, "--generate-password", "--catalog", path)
    assert r.exit_code == 1 and "cannot take a removed member back" in r.output


# ------------------------------------------------------------------------------------------- errors

def test_clear_one_line_errors_for_wrong_token_url_path_and_a_server_that_is_down(ls_server, catalog_factory,
                                                                                  monkeypatch):
    cat = catalog_factory(1)
    path = str(cat.path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    cases = [
        ({"CINECTRL_LS_URL": ls_server.url, "CINECTRL_LS_TOKEN": "f" * 40}, "refused the API token (401)"),
        ({"CINECTRL_LS_URL": f"http://127.0.0.1:{closed}", "CINECTRL_LS_TOKEN": ls_server.token},
         "cannot reach Label Studio"),
        ({"CINECTRL_LS_URL": ls_server.url + "/labelstudio", "CINECTRL_LS_TOKEN": ls_server.token},
         "check the URL (scheme, host, port"),
        ({"CINECTRL_LS_URL": "ftp://host", "CINECTRL_LS_TOKEN": ls_server.token}, "is not an http(s) URL"),
    ]
    for env, message in cases:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        for command in (["review", "push"], ["review", "pull"], ["review", "server", "status"],
                        ["review", "annotators", "list"], ["review", "annotators", "add", "x@lab.test",
                                                           "--generate-password"]):
            r = run(*command, "--catalog", path)
            errors = [line for line in r.output.splitlines() if line.startswith("error: ")]
            assert r.exit_code == 1 and len(errors) == 1 and message in errors[0], (command, env, r.output)
            assert "Traceback" not in r.output and "<html" not in r.output.lower()
            assert env["CINECTRL_LS_TOKEN"] not in r.output
    monkeypatch.delenv("CINECTRL_LS_TOKEN")
    r = run("review", "push", "--catalog", path)
    assert r.exit_code == 1 and "CINECTRL_LS_TOKEN is not" in r.output
    monkeypatch.delenv("CINECTRL_LS_URL")
    r = run("review", "pull", "--catalog", path)     # our server, nothing pushed from this catalog yet
    assert r.exit_code == 1 and "has pushed nothing to" in r.output


def test_external_server_with_a_personal_access_token(ls_server, catalog_factory, people, monkeypatch):
    """A server >= 1.17 issues JWT personal access tokens (legacy tokens are off by default): push, pull (its
    raw export call included) must work with one, and a forged JWT must give the clear 401 error."""
    cat = catalog_factory(1)
    register(cat, ls_server, people, alice="annotator")
    pat = review.client(ls_server).tokens.create().token
    assert pat.startswith("eyJ")
    monkeypatch.setenv("CINECTRL_LS_URL", ls_server.url)
    monkeypatch.setenv("CINECTRL_LS_TOKEN", pat)
    conn = server.connect(cat.path)
    res = review.push(cat, conn, overlap=1)
    assert res.added == 1
    task = tasks_of(conn, res.project_id)[1]
    sdk(ls_server.url, people["alice"]).annotations.create(id=task.id, result=verdict("accept", rating=3))
    out = review.pull(cat, conn)
    assert out.added == 1 and [p["pair_id"] for p in review.train_ready_pairs(cat)] == [1]
    header, payload, _sig = pat.split(".")
    forged = f"{header}.{payload}.{'A' * 43}"
    monkeypatch.setenv("CINECTRL_LS_TOKEN", forged)
    r = run("review", "pull", "--catalog", str(cat.path))
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
    r = run("review", "push", "--catalog", str(cat.path))
    assert r.exit_code == 1 and "chmod 600" in r.output and ls_server.token not in r.output
    cfg.chmod(0o600)
    conn = server.connect(cat.path)
    assert conn.url == ls_server.url and conn.pid is None
    r = run("review", "push", "--catalog", str(cat.path))
    assert r.exit_code == 0, r.output
    assert "1 pairs added" in r.output and ls_server.token not in r.output
    monkeypatch.setenv("CINECTRL_LS_CONFIG", str(tmp_path / "missing.json"))
    r = run("review", "push", "--catalog", str(cat.path))
    assert r.exit_code == 1 and "no such file" in r.output


def test_cli_server_status_and_private_credentials(ls_server, ls_root, catalog_factory):
    cat = catalog_factory(1)
    review.push(cat, ls_server)
    r = run("review", "server", "status", "--catalog", str(cat.path))
    assert r.exit_code == 0, r.output
    assert ls_server.url in r.output and "health: UP" in r.output and ls_server.token not in r.output
    assert "review project" in r.output and "2 verdicts per pair" in r.output
    data = ls_root / ".labelstudio"
    assert (data / "credentials.json").stat().st_mode & 0o077 == 0 and _modes(data) == []
    r = run("review", "push", "--catalog", str(ls_root / "missing" / "none.db"))
    assert r.exit_code == 1 and "Traceback" not in r.output

"""The attacks of issue 24, each made with an annotator's own token on the real server, and the gate's answer:
a forged task imported before its pair is pushed, task data edited under the reviewers, the overlap filled with
annotations the gate does not count, verdicts deleted on the server followed by `push --overlap`."""

from __future__ import annotations

import httpx
import pytest

from annotate import integrity, report, review, server

from .test_review import register, run, sdk, states, tasks_of, verdict

pytestmark = [pytest.mark.labelstudio, pytest.mark.timeout(600)]


def as_user(url: str, person) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Token {person.token}"}, timeout=60)


def add_unpushed_pair(cat) -> int:
    sid = cat.sessions()[0]["id"]
    clips = cat.clips(sid)
    return cat.add_pair(sid, clips[1]["id"], clips[2]["id"], deltas={"aperture_stops": -3.0})


@pytest.mark.both_databases
def test_a_task_an_annotator_imports_for_an_unpushed_pair_is_never_adopted(ls_server, catalog_factory, people):
    cat = catalog_factory(2)
    register(cat, ls_server, people, alice="annotator", bob="annotator")
    res = review.push(cat, ls_server)
    t = tasks_of(ls_server, res.project_id)
    pair = add_unpushed_pair(cat)                       # not on the server yet
    # alice forges pair 3's task: both players show the same clean clip; she copies a real task's seal too
    forged = {**t[1].data, "pair_id": pair, "video_b": t[1].data["video_a"], "video_diff": t[1].data["video_a"]}
    fake = sdk(ls_server.url, people["alice"]).projects.import_tasks(id=res.project_id, request=[{"data": forged}],
                                                                     return_task_ids=True).task_ids[0]
    again = review.push(cat, ls_server)
    assert again.added == 1                              # the real pair is pushed...
    real = server.request(server.identify(ls_server), "GET", "/api/tasks/" + str(
        cat.conn.execute("SELECT task_id FROM ls_tasks WHERE pair_id = ?", (pair,)).fetchone()[0])).json()
    assert real["id"] != fake and real["data"]["video_b"] != real["data"]["video_a"]
    assert [(f["task_id"], f["claims_pair"]) for f in again.foreign] == [(fake, pair)]   # ...the forged one reported
    for name in ("alice", "bob"):
        sdk(ls_server.url, people[name]).annotations.create(id=fake, result=verdict("accept"))
    out = review.pull(cat, ls_server)
    assert states(cat)[pair] == "in_review" and out.added == 0 and out.foreign_tasks == 1
    r = run("review", "status", "--catalog", str(cat.path))
    assert r.exit_code == 0 and f"task {fake} in project {res.project_id} was not pushed by cinectrl (its data " \
        f"names pair {pair})" in r.output, r.output
    # crash recovery still adopts cinectrl's own task (its seal is the one recorded) and nothing else
    cat.conn.execute("DELETE FROM ls_tasks WHERE pair_id = ?", (pair,))
    cat.conn.execute("UPDATE pairs SET review_state = 'unreviewed' WHERE id = ?", (pair,))
    assert review.push(cat, ls_server).added == 0
    assert cat.conn.execute("SELECT task_id FROM ls_tasks WHERE pair_id = ?", (pair,)).fetchone()[0] == real["id"]
    assert states(cat)[pair] == "in_review"             # an adopted pair gets its state at once


@pytest.mark.both_databases
def test_task_data_edited_on_the_server_is_put_back_and_verdicts_on_it_do_not_count(ls_server, catalog_factory,
                                                                                     people):
    cat = catalog_factory(2)
    register(cat, ls_server, people, alice="annotator", bob="annotator")
    res = review.push(cat, ls_server)
    t = tasks_of(ls_server, res.project_id)
    alice, bob = (sdk(ls_server.url, people[n]) for n in ("alice", "bob"))
    bob.annotations.create(id=t[2].id, result=verdict("accept"))
    review.pull(cat, ls_server)                          # bob's verdict on pair 2 was made on the pushed view
    edit = as_user(ls_server.url, people["alice"])
    # alice swaps pair 1's clip (both players show the reference) and rewrites pair 2's header
    for pid, change in ((1, {"video_b": t[1].data["video_a"]}), (2, {"change": "nothing changed"})):
        assert edit.patch(f"/api/tasks/{t[pid].id}", json={"data": {**t[pid].data, **change}}).status_code == 200
    a1 = alice.annotations.create(id=t[1].id, result=verdict("accept"))
    b1 = bob.annotations.create(id=t[1].id, result=verdict("accept"))
    alice.annotations.create(id=t[2].id, result=verdict("accept"))
    out = review.pull(cat, ls_server)
    assert {(x["pair_id"], tuple(x["accounts"])) for x in out.tampered} == {
        (1, ("alice@lab.test", "bob@lab.test")), (2, ("alice@lab.test",))}
    assert states(cat) == {1: "in_review", 2: "in_review"}
    assert out.ignored[integrity.TAINTED.format(task=t[1].id)] == 2
    now = tasks_of(ls_server, res.project_id)
    assert {k: v for k, v in now[1].data.items()} == t[1].data and now[2].data == t[2].data   # put back
    assert review.pull(cat, ls_server).nothing_changed                                     # and stays so
    # the reviewers look again at the real view and save: counted
    alice.annotations.update(id=a1.id, result=verdict("accept"))
    bob.annotations.update(id=b1.id, result=verdict("reject", reasons=["misaligned"]))
    review.pull(cat, ls_server)
    assert states(cat)[1] == "disputed"


@pytest.mark.both_databases
def test_annotations_the_gate_does_not_count_never_close_a_task(ls_server, catalog_factory, people):
    cat = catalog_factory(1)
    register(cat, ls_server, people, alice="annotator", bob="annotator", erin="annotator", dave="adjudicator")
    res = review.push(cat, ls_server)
    task = tasks_of(ls_server, res.project_id)[1]
    sdk(ls_server.url, people["eve"]).annotations.create(id=task.id, result=verdict("accept"))   # unregistered
    sdk(ls_server.url, people["alice"]).annotations.create(id=task.id, result=verdict(None, rating=3))   # blank
    bob = as_user(ls_server.url, people["bob"])
    assert bob.get(f"/api/projects/{res.project_id}/next/").status_code == 404   # Label Studio: queue empty
    out = review.pull(cat, ls_server)
    assert [(r["pair_id"], r["overlap"], r["uncounted"]) for r in out.overlap_raised] == [(1, 4, 2)]
    assert bob.get(f"/api/projects/{res.project_id}/next/").json()["id"] == task.id   # back in bob's queue
    sdk(ls_server.url, people["bob"]).annotations.create(id=task.id, result=verdict("accept"))
    sdk(ls_server.url, people["erin"]).annotations.create(id=task.id, result=verdict("reject"))
    assert review.pull(cat, ls_server).states == {"disputed": 1}
    adj_project = review._projects(cat, server.identify(ls_server).key)["adjudication"][0]
    adj = tasks_of(ls_server, adj_project)[1]
    # an annotator "adjudicates" (not counted): the adjudicator still gets the task
    sdk(ls_server.url, people["alice"]).annotations.create(id=adj.id, result=verdict("accept"))
    dave = as_user(ls_server.url, people["dave"])
    assert dave.get(f"/api/projects/{adj_project}/next/").status_code == 404
    out = review.pull(cat, ls_server)
    assert [(r["stage"], r["overlap"]) for r in out.overlap_raised] == [("adjudication", 2)]
    assert dave.get(f"/api/projects/{adj_project}/next/").json()["id"] == adj.id


def test_pairs_that_cannot_be_decided_are_named_with_why(ls_server, catalog_factory, people):
    cat = catalog_factory(2)
    register(cat, ls_server, people, alice="annotator", bob="annotator")
    res = review.push(cat, ls_server, overlap=3)         # three verdicts per pair, two reviewers registered
    t = tasks_of(ls_server, res.project_id)
    for name, v in (("alice", "accept"), ("bob", "reject")):
        sdk(ls_server.url, people[name]).annotations.create(id=t[1].id, result=verdict(v))
    out = review.pull(cat, ls_server)
    assert set(out.stalled) == {1, 2}
    assert "needs 1 more counted verdicts but only 0 registered active accounts" in out.stalled[1]
    assert "needs 3 more counted verdicts but only 2" in out.stalled[2]
    r = run("review", "status", "--catalog", str(cat.path))
    assert "pair 1 cannot reach a decision: needs 1 more" in r.output, r.output
    # a disputed pair with no adjudicator who did not review it
    cat2 = catalog_factory(1)
    register(cat2, ls_server, people, alice="annotator", bob="annotator")
    res2 = review.push(cat2, ls_server)
    t2 = tasks_of(ls_server, res2.project_id)
    for name, v in (("alice", "accept"), ("bob", "reject")):
        sdk(ls_server.url, people[name]).annotations.create(id=t2[1].id, result=verdict(v))
    out = review.pull(cat2, ls_server)
    assert out.stalled[1].startswith("no registered adjudicator who did not review it")
    assert report.summary(cat2)["stalled"] == out.stalled


@pytest.mark.both_databases
def test_verdicts_deleted_on_the_server_are_reported_and_overlap_still_refused(ls_server, catalog_factory,
                                                                             people):
    cat = catalog_factory(2)
    register(cat, ls_server, people, alice="annotator", bob="annotator")
    res = review.push(cat, ls_server)
    t = tasks_of(ls_server, res.project_id)
    for name in ("alice", "bob"):
        sdk(ls_server.url, people[name]).annotations.create(id=t[1].id, result=verdict("accept"))
    review.pull(cat, ls_server)
    assert states(cat)[1] == "accepted"
    # bob erases every annotation of the project with his own token
    bob = as_user(ls_server.url, people["bob"])
    r = bob.post("/api/dm/actions", params={"id": "delete_tasks_annotations", "project": res.project_id},
                 json={"selectedItems": {"all": True, "excluded": []}, "project": res.project_id})
    assert r.status_code == 200 and not tasks_of(ls_server, res.project_id)[1].annotations
    r = run("review", "push", "--overlap", "3", "--catalog", str(cat.path))
    assert r.exit_code == 1 and "the catalog holds 2 counted verdicts" in r.output, r.output
    out = review.pull(cat, ls_server)
    assert sorted(v["annotator"] for v in out.vanished) == ["alice@lab.test", "bob@lab.test"]
    assert states(cat)[1] == "accepted" and [p["pair_id"] for p in review.train_ready_pairs(cat)] == [1]
    r = run("review", "pull", "--catalog", str(cat.path))
    assert r.exit_code == 0 and "gone from the server" not in r.output            # reported once, when found
    r = run("review", "status", "--catalog", str(cat.path))
    assert "verdicts gone from the server (kept and counted here): 2" in r.output, r.output


def test_identical_takes_get_one_task_and_push_says_so(ls_server, catalog_factory, people):
    cat = catalog_factory(2)
    first = review.push(cat, ls_server)
    # a retake session whose clips are byte-identical to the first session's (another session, same files)
    ref, *others = cat.rows("SELECT asset_id FROM clips ORDER BY id")
    sid = cat.create_session("retake", mode="passes")
    with cat.transaction():
        r = cat.add_clip(sid, "c000", asset_id=ref["asset_id"], frames=12, fps=24, settings={"aperture": "f/8"})
        retakes = [cat.add_pair(sid, r, cat.add_clip(sid, f"c{i + 1:03d}", asset_id=o["asset_id"], frames=12, fps=24,
                                                    settings={"aperture": "f/2.8"}))
                   for i, o in enumerate(others)]
    r = run("review", "push", "--catalog", str(cat.path))
    assert r.exit_code == 0 and "0 pairs added" in r.output, r.output
    for pair, same in zip(retakes, (1, 2)):
        assert f"pair {pair} shows the very same clips as pair {same} (identical takes" in r.output
    assert sorted(tasks_of(ls_server, first.project_id)) == [1, 2]      # one task per distinct view


def test_an_interrupted_gold_push_rerun_makes_no_second_set_of_gold(ls_server, catalog_factory, monkeypatch):
    cat = catalog_factory(4)
    real_import = review._import

    def failing(*a, **kw):
        raise server.ServerError("cannot reach Label Studio (simulated): rerun once it is up")

    monkeypatch.setattr(review, "_import", failing)
    with pytest.raises(server.ServerError):
        review.push(cat, ls_server, gold_rate=0.5, seed=3)
    made = [p["pair_id"] for p in review.review_pairs(cat) if p["gold_kind"]]
    assert len(made) == 2
    monkeypatch.setattr(review, "_import", real_import)
    res = review.push(cat, ls_server, gold_rate=0.5, seed=3)            # the rerun the message asks for
    assert (res.added, res.gold) == (4, 2)
    assert [p["pair_id"] for p in review.review_pairs(cat) if p["gold_kind"]] == made
    assert len(tasks_of(ls_server, res.project_id)) == 6

"""Read-only views of the review tables: figures per reviewer, agreement, and the decisions export.

No server and no SDK needed: everything here reads the catalog (what `pull` brought in and the gate judged).
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from datetime import datetime, timezone
from typing import Any, Iterator

from capture.catalog import Catalog

from . import accounts, integrity
from . import gold as goldmod
from .config import DEFAULT_OVERLAP

def _verdict_rows(cat: Catalog) -> list[dict[str, Any]]:
    """Every verdict with its account; a verdict that another account wrote (completed_by != updated_by) is
    listed under the account that wrote it, never credited to the one it names."""
    rows = cat.rows(
        "SELECT r.pair_id, coalesce(r.stage, 'review') AS stage, r.server, "
        "CASE WHEN r.updated_by IS NOT NULL AND r.updated_by != r.account_id THEN r.updated_by "
        "ELSE r.account_id END AS account_id, "
        "CASE WHEN r.updated_by IS NOT NULL AND r.updated_by != r.account_id THEN 'user ' || r.updated_by "
        "ELSE r.annotator END AS annotator, r.verdict, "
        "r.reasons_json, r.lead_time_s, r.counted, p.gold_kind, a.email AS registered_email, a.role, a.removed_at "
        "FROM reviews r JOIN pairs p ON p.id = r.pair_id "
        "LEFT JOIN review_accounts a ON a.server = r.server AND a.user_id = "
        "CASE WHEN r.updated_by IS NOT NULL AND r.updated_by != r.account_id THEN r.updated_by ELSE r.account_id END")
    for r in rows:
        r["reasons"] = json.loads(r.pop("reasons_json") or "[]")
        r["who"] = (r["server"], r["account_id"]) if r["account_id"] is not None else (None, r["annotator"])
    return rows


def reviewer_stats(cat: Catalog) -> list[dict[str, Any]]:
    """Per account: tasks (counted review verdicts, gold included), adjudications, verdicts not counted,
    accuracy on gold tasks, agreement with peers (share of other accounts' counted verdicts on the same real
    pairs that match), median time per task (Label Studio's lead time) and reason-code counts."""
    rows = _verdict_rows(cat)
    counted = [r for r in rows if r["counted"]]
    by_pair: dict[int, dict[tuple, str]] = defaultdict(dict)
    for r in counted:
        if r["stage"] == "review" and r["gold_kind"] is None:
            by_pair[r["pair_id"]][r["who"]] = r["verdict"]
    people: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        p = people.setdefault(r["who"], {
            "account": r["registered_email"] or r["annotator"], "account_id": r["account_id"], "server": r["server"],
            "role": r["role"] or "not registered", "status": ("removed" if r["removed_at"] else "active")
            if r["role"] else "not registered", "tasks": 0, "adjudications": 0, "not_counted": 0,
            "_gold": [], "_agree": [], "_lead": [], "reasons": Counter()})
        if not r["counted"]:
            p["not_counted"] += 1
            continue
        p["tasks" if r["stage"] == "review" else "adjudications"] += 1
        if r["lead_time_s"] is not None:
            p["_lead"].append(float(r["lead_time_s"]))
        p["reasons"].update(r["reasons"])
        if r["stage"] == "review" and r["gold_kind"] is not None:
            p["_gold"].append(r)
        elif r["stage"] == "review":
            peers = [v for who, v in by_pair[r["pair_id"]].items() if who != r["who"]]
            if peers:
                p["_agree"].append(sum(v == r["verdict"] for v in peers) / len(peers))
    out = []
    for p in people.values():
        p.update(goldmod.accuracy(p.pop("_gold")))
        agree, lead = p.pop("_agree"), p.pop("_lead")
        p["peer_pairs"] = len(agree)
        p["agreement_with_peers"] = (sum(agree) / len(agree)) if agree else None
        p["median_lead_time_s"] = statistics.median(lead) if lead else None
        p["reasons"] = dict(sorted(p["reasons"].items()))
        out.append(p)
    return sorted(out, key=lambda p: (p["role"] == "not registered", p["account"]))


def agreement(cat: Catalog) -> dict[str, Any]:
    """Percent agreement per real pair (pairwise among its counted review verdicts) and Krippendorff's alpha
    (nominal) on the verdict across the project; gold pairs and adjudications excluded."""
    import krippendorff
    import numpy as np

    votes: dict[int, dict[tuple, str]] = defaultdict(dict)
    for r in _verdict_rows(cat):
        if r["counted"] and r["stage"] == "review" and r["gold_kind"] is None:
            votes[r["pair_id"]][r["who"]] = r["verdict"]
    per_pair: dict[int, float] = {}
    for pid, v in votes.items():
        vals = list(v.values())
        if len(vals) >= 2:
            agreeing = sum(a == b for i, a in enumerate(vals) for b in vals[i + 1:])
            per_pair[pid] = agreeing / (len(vals) * (len(vals) - 1) / 2)
    raters = sorted({w for v in votes.values() for w in v}, key=str)
    pairs = sorted(votes)
    alpha = None
    if len(raters) >= 2 and per_pair:
        mat = np.full((len(raters), len(pairs)), np.nan)
        for j, pid in enumerate(pairs):
            for who, verdict in votes[pid].items():
                mat[raters.index(who), j] = 1.0 if verdict == "accept" else 0.0
        try:
            alpha = float(krippendorff.alpha(reliability_data=mat, level_of_measurement="nominal"))
        except ValueError:  # one verdict value only: alpha undefined
            alpha = None
    return {"per_pair": per_pair, "percent": (sum(per_pair.values()) / len(per_pair)) if per_pair else None,
            "alpha": alpha}


def summary(cat: Catalog) -> dict[str, Any]:
    """What `cinectrl review status --json` prints."""
    states = {r[0]: r[1] for r in cat.conn.execute(
        "SELECT review_state, count(*) FROM pairs WHERE gold_kind IS NULL GROUP BY 1")}
    ready = cat.conn.execute("SELECT count(*) FROM pairs WHERE train_ready = 1 AND review_state = 'accepted' "
                             "AND gold_kind IS NULL").fetchone()[0]
    golds = dict(cat.conn.execute("SELECT gold_kind, count(*) FROM pairs WHERE gold_kind IS NOT NULL GROUP BY 1"))
    ag = agreement(cat)
    ignored = dict(cat.conn.execute("SELECT gate_note, count(*) FROM reviews WHERE counted = 0 GROUP BY 1"))
    return {"pairs": states, "train_ready": int(ready), "gold_pairs": golds,
            "agreement": {"percent": ag["percent"], "alpha": ag["alpha"], "pairs_compared": len(ag["per_pair"])},
            "not_counted": ignored, "reviewers": reviewer_stats(cat), "stalled": stalled(cat),
            "foreign_tasks": integrity.foreign(cat), "vanished": integrity.vanished(cat)}


def quorums(cat: Catalog) -> dict[int, int]:
    """pair id -> the quorum cinectrl set for its review task (the largest, if pushed to several servers)."""
    return {r[0]: int(r[1] or DEFAULT_OVERLAP) for r in cat.conn.execute(
        "SELECT t.pair_id, max(p.overlap) FROM ls_tasks t JOIN ls_projects p ON p.server = t.server "
        "AND p.project_id = t.project_id AND p.kind = 'review' WHERE t.kind = 'review' GROUP BY t.pair_id")}


def stalled(cat: Catalog, server: str | None = None) -> dict[int, str]:
    """Real pairs that cannot reach a decision as things stand, and why (from the catalog only): not enough
    registered accounts left to make the quorum, no adjudicator who did not review the pair, adjudicators who
    disagree. Gold pairs are left out (they are never decided for training)."""
    registry = accounts.registry(cat)
    active = {k: a for k, a in registry.items() if a.removed_at is None and (server is None or k[0] == server)}
    quorums_ = quorums(cat)
    counted: dict[int, dict[str, dict[tuple, str]]] = defaultdict(lambda: defaultdict(dict))
    voted: dict[int, set[tuple]] = defaultdict(set)
    for pair_id, stage, srv, uid, email, verdict, ok in cat.conn.execute(
            "SELECT pair_id, coalesce(stage, 'review'), server, account_id, annotator, verdict, counted "
            "FROM reviews"):
        if stage == "review" and uid is not None:
            voted[pair_id].add((srv, uid))
        if ok:
            counted[pair_id][stage][(srv, uid)] = f"{email}: {verdict}"
    out = {}
    for pair_id, state in cat.conn.execute("SELECT id, review_state FROM pairs WHERE gold_kind IS NULL AND "
                                           "review_state IN ('in_review', 'disputed')"):
        if state == "in_review":
            need = quorums_.get(pair_id, DEFAULT_OVERLAP) - len(counted[pair_id]["review"])
            left = [a for k, a in active.items() if k not in counted[pair_id]["review"]]
            if need > len(left):
                out[pair_id] = (f"needs {need} more counted verdicts but only {len(left)} registered active "
                                "accounts have not given one: register more reviewers (cinectrl review "
                                "annotators add)")
            continue
        adjudications = counted[pair_id]["adjudication"]
        if len(adjudications) > 1:
            out[pair_id] = ("adjudicators disagree (" + "; ".join(sorted(adjudications.values())) + "): one of "
                            "them must change their verdict")
        elif not adjudications and not [k for k, a in active.items()
                                        if a.role == "adjudicator" and k not in voted[pair_id]]:
            out[pair_id] = ("no registered adjudicator who did not review it: register one (cinectrl review "
                            "annotators add EMAIL --role adjudicator)")
    return out

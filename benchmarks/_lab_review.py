"""The lab day's review step: the real flow (a local Label Studio, reviewer accounts, push, verdicts, pull, the
gate) with two scripted annotators who vote through the SDK with their own accounts, as the review tests do.

Each annotator reads the pair's automatic QC in the catalog (a scripted reviewer cannot look at the clips the
way a person does) and votes accept when QC passed, reject with the reason code otherwise. The gate then makes
a pair train-ready only on two independent accepting verdicts; nothing is set in the catalog by hand.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable

import httpx

ANNOTATORS = ("ann.one@lab.test", "ann.two@lab.test")


def _token(url: str, email: str, password: str) -> str:
    """The annotator's own API token, the way a person gets it: log in, read it from the account page's API."""
    with httpx.Client(base_url=url, follow_redirects=False, timeout=30) as client:
        client.get("/user/login/")
        reply = client.post("/user/login/", data={"email": email, "password": password,
                                                  "csrfmiddlewaretoken": client.cookies["csrftoken"]},
                            headers={"Referer": url + "/user/login/"})
        if reply.status_code != 302:
            raise SystemExit(f"review: logging in as {email} failed ({reply.status_code})")
        reply = client.get("/api/current-user/token")
        reply.raise_for_status()
        return reply.json()["token"]


def _verdict(qc: dict[str, Any]) -> list[dict[str, Any]]:
    failures = qc.get("failures") or []
    result = [{"from_name": "verdict", "to_name": "video_a", "type": "choices",
               "value": {"choices": ["reject" if failures else "accept"]}}]
    if failures:
        reason = "misaligned" if any(f.startswith("misaligned") for f in failures) else "exposure"
        result.append({"from_name": "reasons", "to_name": "video_b", "type": "choices",
                       "value": {"choices": [reason]}})
    return result


def run(work: Path, cli: Callable[..., str]) -> dict[str, Any]:
    """Start the server, register the annotators, push, vote, pull; returns the counts."""
    from label_studio_sdk import LabelStudio

    started = time.time()
    catalog = work / "lab" / "catalog.db"
    cli("review", "server", "start", "--catalog", str(catalog), cwd=work, timeout=900)
    try:
        url = re.search(r"https?://[0-9.:]+", cli("review", "server", "status", "--catalog", str(catalog),
                                                 cwd=work)).group(0)
        tokens = {}
        for email in ANNOTATORS:
            shown = cli("review", "annotators", "add", email, "--generate-password", "--catalog", str(catalog),
                        cwd=work)
            password = re.search(r"password: (\S+)", shown).group(1)
            tokens[email] = _token(url, email, password)
        pushed = cli("review", "push", "--overlap", "2", "--catalog", str(catalog), cwd=work)
        project = int(re.search(r"project (\d+)", pushed).group(1))
        db = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
        qc = {pid: json.loads(q or "{}") for pid, q in db.execute("SELECT id, qc_json FROM pairs")}
        db.close()
        votes = 0
        for email, token in tokens.items():
            client = LabelStudio(base_url=url, api_key=token)
            for task in client.tasks.list(project=project, fields="all"):
                pair_id = int(task.data["pair_id"])
                client.annotations.create(id=task.id, result=_verdict(qc.get(pair_id, {})), lead_time=1.0)
                votes += 1
        pulled = cli("review", "pull", "--catalog", str(catalog), cwd=work)
        status = cli("review", "status", "--catalog", str(catalog), cwd=work)
    finally:
        cli("review", "server", "stop", "--catalog", str(catalog), cwd=work)
    db = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
    ready, states = db.execute("SELECT sum(train_ready), count(*) FROM pairs").fetchone()
    by_state = dict(db.execute("SELECT review_state, count(*) FROM pairs GROUP BY 1").fetchall())
    db.close()
    return {"seconds": time.time() - started, "votes": votes, "train_ready": int(ready or 0), "pairs": states,
            "review_states": by_state, "pull": pulled.strip().splitlines()[-1:], "status": status.strip()[-400:]}

"""`cinectrl review`: the Label Studio server, reviewer accounts, push/pull of pairs, status and the gate."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import click
import typer

from ._common import CatalogOption, console, fail, resolve_catalog

app = typer.Typer(no_args_is_help=True)
server_app = typer.Typer(no_args_is_help=True, help="Start/stop/inspect the local Label Studio server.")
annotators_app = typer.Typer(no_args_is_help=True, help="Reviewer accounts and their roles (annotator, adjudicator).")
app.add_typer(server_app, name="server")
app.add_typer(annotators_app, name="annotators")


def _catalog(path: Path | None, *, create: bool = False):
    from capture.catalog import Catalog, CatalogError

    try:
        return Catalog(resolve_catalog(path), create=create)
    except CatalogError as exc:
        fail(str(exc))


def _server(cat, *, record: bool = True):
    """The server for this catalog, checked (URL, path, token) and identified; `record=False` writes nothing."""
    from annotate import review, server

    try:
        return review.open_server(cat, server.connect(cat.path), record=record)
    except server.ServerError as exc:
        fail(str(exc))


def _run(fn, *args, **kw):
    from annotate.server import ServerError

    try:
        return fn(*args, **kw)
    except ServerError as exc:
        fail(str(exc))


def _say(text: str) -> None:
    console.print(text, highlight=False, soft_wrap=True, markup=False)


# ------------------------------------------------------------------------------------------- server

@server_app.command("start")
def server_start(catalog: Optional[Path] = CatalogOption,
                 port: Optional[int] = typer.Option(None, min=1, max=65535,
                                                    help="Port on 127.0.0.1 (default: the last one used, else a "
                                                         "free one; remembered)."),
                 database: Optional[str] = typer.Option(
                     None, "--database", metavar="URL",
                     help="postgresql://user:password@host:5432/dbname for a team's server (several annotators at "
                          "once), or `sqlite` (the default: one workstation). Remembered like the port; the "
                          "password is kept in the private data dir and never printed.")) -> None:
    """Start Label Studio (installs it into its own venv on first use, ~70 s; first boot ~35 s)."""
    from annotate import server

    path = resolve_catalog(catalog)
    path.parent.mkdir(parents=True, exist_ok=True)
    if database is not None:
        _run(server.parse_database, database)       # a bad URL is one clear line before anything starts
    if server.installed():
        _say("starting Label Studio...")
    else:
        _say(f"installing Label Studio into {server.venv_path()} (first use: a minute or two), then starting it...")
    conn = _run(server.start, path, port=port, database=database)
    creds_file = server.data_dir_for(path) / "credentials.json"
    state = server.read_state(server.data_dir_for(path)) or {}
    _say(f"Label Studio up at {conn.url} (PID {conn.pid}) on {server.database_label(state.get('database'))}; "
         f"admin login and API token in {creds_file}")


@server_app.command("stop")
def server_stop(catalog: Optional[Path] = CatalogOption) -> None:
    """Stop the server started for this catalog (by its recorded PID); its port is kept for the next start."""
    from annotate import server

    stopped = server.stop(resolve_catalog(catalog))
    _say("stopped" if stopped else "no server was running for this catalog")


@server_app.command("status")
def server_status(catalog: Optional[Path] = CatalogOption) -> None:
    """URL, PID, database, health, instance and this catalog's projects there (never the token). Writes nothing."""
    from annotate import review, server

    cat = _catalog(catalog)
    conn = _run(server.connect, cat.path)
    health = server.probe(conn)
    _say(f"url: {conn.url}\npid: {conn.pid if conn.pid else '(external server)'}")
    if conn.pid:
        state = server.read_state(server.data_dir_for(cat.path)) or {}
        _say(f"database: {server.database_label(state.get('database'))}")
    _say(f"health: {health.word}")
    if health.problem:
        fail(str(health.problem))
    conn = _server(cat, record=False)
    me = _run(server.whoami, conn)
    _say(f"instance: {conn.key} (Label Studio {server.server_version(conn)}), token of {me.get('email')}")
    for kind, (project_id, overlap) in sorted(review._projects(cat, conn.key).items()):
        p = _run(server.request, conn, "GET", f"/api/projects/{project_id}/").json()
        _say(f"{kind} project {project_id} {p.get('title')!r}: {p.get('task_number')} tasks, "
             f"{p.get('num_tasks_with_annotations')} with verdicts, {overlap} verdicts per pair")


# ------------------------------------------------------------------------------------------- accounts

class Role(str, Enum):
    annotator = "annotator"
    adjudicator = "adjudicator"


@annotators_app.command("add")
def annotators_add(email: str = typer.Argument(..., help="The reviewer's email (their login)."),
                   role: Role = typer.Option(Role.annotator, "--role",
                                             help="annotator: reviews pairs; adjudicator: may also settle splits "
                                                  "on pairs it did not review."),
                   generate_password: bool = typer.Option(False, "--generate-password",
                                                          help="Make up a password and show it once, instead of "
                                                               "asking for one."),
                   catalog: Optional[Path] = CatalogOption) -> None:
    """Create a reviewer account on the server (or register an existing one) with its role in the catalog."""
    from annotate import accounts

    email = _run(accounts.check_email, email)          # before any prompt
    cat = _catalog(catalog)
    conn = _server(cat)
    exists = email in _run(accounts.server_users, conn).values()
    password = None
    if not exists and not generate_password:
        low, high = accounts.PASSWORD_LENGTH
        try:
            password = typer.prompt(f"password for {email} ({low}-{high} characters)", hide_input=True,
                                    confirmation_prompt=True)
        except click.exceptions.Abort:
            fail("no password typed (no terminal?): pass --generate-password to have one made and shown once")
    res = _run(accounts.add, cat, conn, email, role=role.value, password=password)
    if res.created:
        _say(f"created {res.email} (user {res.user_id}) on {conn.url} as {res.role}")
    else:
        change = f" (was {res.previous_role})" if res.previous_role and res.previous_role != res.role else ""
        _say(f"registered the existing account {res.email} (user {res.user_id}) as {res.role}{change}; "
             "its password is unchanged")
    if res.password:
        _say(f"password: {res.password}\n(shown once and not stored: hand it to the reviewer now)")


@annotators_app.command("list")
def annotators_list(catalog: Optional[Path] = CatalogOption) -> None:
    """Registered reviewer accounts on this catalog's server, with their roles."""
    import time

    from annotate import accounts

    cat = _catalog(catalog)
    conn = _server(cat)
    rows = accounts.listed(cat, conn.key)
    if not rows:
        _say(f"no reviewer registered for {conn.url}: `cinectrl review annotators add EMAIL`")
        return
    for r in rows:
        status = "removed " + time.strftime("%Y-%m-%d", time.localtime(r["removed_at"])) if r["removed_at"] \
            else "active"
        _say(f"{r['email']:<32} {r['role']:<12} user {r['user_id']:<5} {status}")


@annotators_app.command("remove")
def annotators_remove(email: str = typer.Argument(..., help="The reviewer's email."),
                      catalog: Optional[Path] = CatalogOption) -> None:
    """Take the account out of the server's organization; its verdicts from now on do not count."""
    from annotate import accounts

    cat = _catalog(catalog)
    conn = _server(cat)
    res = _run(accounts.remove, cat, conn, email)
    _say(f"removed {res['email']} (user {res['user_id']}) from {conn.url}: it can no longer open the projects; "
         "verdicts it made before now still count")


# ------------------------------------------------------------------------------------------- push, pull

@app.command()
def push(catalog: Optional[Path] = CatalogOption,
         session: Optional[int] = typer.Option(None, "--session", help="Only this session's pairs."),
         overlap: Optional[int] = typer.Option(None, min=1,
                                               help="Verdicts per pair (the quorum). New project: default 2; an "
                                                    "existing one changes only while it has no verdicts."),
         gold_rate: float = typer.Option(0.0, "--gold-rate", min=0.0, max=1.0,
                                         help="Gold tasks (known-bad pairs) mixed in per new pair, e.g. 0.1."),
         seed: Optional[int] = typer.Option(None, help="Seed for choosing and placing gold tasks.")) -> None:
    """Send pairs not yet on the server as review tasks (idempotent)."""
    from annotate import review

    cat = _catalog(catalog)
    conn = _server(cat)
    res = _run(review.push, cat, conn, session_id=session, overlap=overlap, gold_rate=gold_rate, seed=seed)
    gold = f", {res.gold} gold tasks mixed in" if res.gold else ""
    _say(f"project {res.project_id} ({res.overlap} verdicts per pair): {res.added} pairs added, "
         f"{res.already} already there{gold}")
    for pair, same in res.identical:
        _say(f"  pair {pair} shows the very same clips as pair {same} (identical takes, same sha256): not pushed "
             f"again; pair {same}'s task stands for both")
    if res.restored:
        _say(f"restored project settings someone changed on the server: {', '.join(res.restored)}")
    _say_foreign(res.foreign)


def _say_foreign(foreign) -> None:
    for f in foreign:
        claim = f" (its data names pair {f['claims_pair']})" if f["claims_pair"] is not None else ""
        _say(f"  task {f['task_id']} in project {f['project_id']} was not pushed by cinectrl{claim}: never read "
             "or adopted; delete it on the server")


@app.command()
def pull(catalog: Optional[Path] = CatalogOption) -> None:
    """Bring verdicts into the catalog; decide pairs; route splits to adjudication."""
    from annotate import review

    cat = _catalog(catalog)
    conn = _server(cat)
    res = _run(review.pull, cat, conn)
    if res.restored:
        _say(f"restored project settings someone changed on the server: {', '.join(res.restored)}")
    if res.nothing_changed:
        _say(f"nothing changed: {res.unchanged} verdicts already up to date, no pair changed state")
    else:
        states = ", ".join(f"{k} {v}" for k, v in sorted(res.states.items())) or "none"
        golds = ", ".join(f"{k} {v}" for k, v in sorted(res.gold_states.items()))
        _say(f"{res.added} verdicts added, {res.updated} updated, {res.unchanged} unchanged; "
             f"{res.changed_pairs} pairs changed state (now: {states}" + (f"; gold pairs: {golds}" if golds else "")
             + f"); {res.adjudication_pushed} sent to adjudication"
             + (f", {res.adjudication_refreshed} adjudication tasks refreshed" if res.adjudication_refreshed else ""))
    for why, n in sorted(res.ignored.items()):
        _say(f"  not counted: {n} x {why}")
    for t in res.tampered:
        who = ", ".join(t["accounts"]) or "none yet"
        _say(f"  task {t['task_id']} (pair {t['pair_id']}, {t['stage']}) showed other data than cinectrl pushed: "
             f"put back; verdicts made on it not counted until saved again: {who}")
    for v in res.vanished:
        _say(f"  verdict of {v['annotator']} on pair {v['pair_id']} ({v['stage']}: {v['verdict']}) is gone from the "
             "server (deleted there); the catalog keeps it and it still counts")
    for r in res.overlap_raised:
        _say(f"  task {r['task_id']} (pair {r['pair_id']}, {r['stage']}) holds {r['uncounted']} annotations the gate "
             f"does not count: its overlap is now {r['overlap']} so it stays in the queue")
    _say_foreign(res.foreign)
    _say_stalled(res.stalled)


def _say_stalled(stalled) -> None:
    for pair_id, why in sorted(stalled.items()):
        _say(f"  pair {pair_id} cannot reach a decision: {why}")


def _fmt(value, spec: str = "{:.0%}") -> str:
    return "n/a" if value is None else spec.format(value)


@app.command()
def status(catalog: Optional[Path] = CatalogOption,
           as_json: bool = typer.Option(False, "--json", help="Print everything as one JSON object.")) -> None:
    """Pairs by state, agreement, and per reviewer: tasks, gold accuracy, agreement with peers, median time per
    task, reason codes (from the catalog only)."""
    from annotate import report

    cat = _catalog(catalog)
    s = report.summary(cat)
    if as_json:
        print(json.dumps(s, indent=2, sort_keys=True))
        return
    _say("pairs: " + (", ".join(f"{k} {v}" for k, v in sorted(s["pairs"].items())) or "none")
         + f"; train-ready {s['train_ready']}"
         + (f"; gold pairs {sum(s['gold_pairs'].values())}" if s["gold_pairs"] else ""))
    ag = s["agreement"]
    _say(f"agreement on verdict: {_fmt(ag['percent'], '{:.1%}')} (pairs with >= 2 counted verdicts: "
         f"{ag['pairs_compared']}), Krippendorff's alpha {_fmt(ag['alpha'], '{:.3f}')}")
    for why, n in sorted(s["not_counted"].items()):
        _say(f"not counted: {n} x {why}")
    if s["vanished"]:
        _say(f"verdicts gone from the server (kept and counted here): {len(s['vanished'])}")
    _say_foreign(s["foreign_tasks"])
    _say_stalled({int(k): v for k, v in s["stalled"].items()})
    for r in s["reviewers"]:
        reasons = ", ".join(f"{k} {v}" for k, v in r["reasons"].items()) or "-"
        lead = _fmt(r["median_lead_time_s"], "{:.1f} s")
        _say(f"  {r['account']} ({r['role']}{', removed' if r['status'] == 'removed' else ''}): "
             f"{r['tasks']} tasks, {r['adjudications']} adjudications, gold {r['gold_correct']}/{r['gold_tasks']} "
             f"({_fmt(r['gold_accuracy'])}), agreement with peers {_fmt(r['agreement_with_peers'])} over "
             f"{r['peer_pairs']} pairs, median time per task {lead}, reasons: {reasons}"
             + (f", {r['not_counted']} not counted" if r["not_counted"] else ""))

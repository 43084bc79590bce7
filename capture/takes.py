"""Which session a `capture run` (or `capture plan`) means: resume, a new take, or refuse an edited plan.

A session is keyed by its plan's meaning (`capture.plan.plan_key`), so comments and formatting change
nothing: a rerun of the same plan resumes its latest unfinished session. When the plan file of an
unfinished session changed in substance, nobody guesses: the technician is told what changed and asked
for `--new-take` (a new session of the edited plan) or `--session N` (resume N with the plan stored in
the catalog).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import status as words
from .ledger import Ledger
from .plan import Plan, PlanError, describe_changes, parse_plan, plan_key


class TakeRefused(Exception):
    """This run cannot start as asked; the message says why and what to type instead. Nothing was changed."""


class PlanChanged(TakeRefused):
    def __init__(self, session: dict, plan_path: str, changes: list[str], done: int, total: int) -> None:
        self.session_id = int(session["id"])
        self.changes = changes
        listing = "\n".join(f"  {c}" for c in changes) or "  (the stored plan no longer parses)"
        super().__init__(
            f"{plan_path} changed since session {self.session_id} ({session['word']}, {done}/{total} points done) "
            f"was planned from it:\n{listing}\n"
            f"run the edited plan as a new take with --new-take, or resume session {self.session_id} with the "
            f"plan stored in the catalog with --session {self.session_id}")


@dataclass
class Take:
    plan: Plan                      # what to shoot: the file's plan, or session N's stored plan
    key: str
    session: dict | None = None     # the session to resume; None = a new take
    take: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def resumed(self) -> bool:
        return self.session is not None

    @property
    def complete(self) -> bool:
        return self.session is not None and words.finished(self.session["word"])


def stored_plan(session: dict) -> Plan:
    if not session.get("plan_toml"):
        raise TakeRefused(f"session {session['id']} was not made by `capture run` (no stored plan); it cannot be "
                          "resumed")
    try:
        plan = parse_plan(session["plan_toml"], source=f"session {session['id']}'s stored plan")
        if session.get("plan_path"):           # a relative virtual:DIR is read from the plan file's folder
            plan.base_dir = str(Path(session["plan_path"]).parent)
        return plan
    except PlanError as exc:
        raise TakeRefused(f"session {session['id']}'s stored plan no longer passes this version's checks:\n"
                          f"{exc}\nrun the plan as a new take with --new-take") from None


def choose_take(ledger: Ledger, plan: Plan | None, *, plan_path: str | None, new_take: bool = False,
                session_id: int | None = None) -> Take:
    """Resume, start a new take, or refuse (TakeRefused) -- reading the catalog only."""
    if session_id is not None:
        if new_take:
            raise TakeRefused("--session N resumes an existing session and --new-take starts a new one: give one")
        session = ledger.session(session_id)
        if session is None:
            raise TakeRefused(f"there is no session {session_id} in {ledger.catalog.path}; `cinectrl capture status` "
                              "lists them")
        stored = stored_plan(session)
        return Take(stored, plan_key(stored), session, session.get("take") or 1)
    if plan is None:
        raise TakeRefused("give a plan file, or --session N to resume a session with its stored plan")
    key = plan_key(plan)
    same = ledger.sessions_of_plan(key)
    if new_take:
        return Take(plan, key, None, ledger.next_take(key))
    unfinished = [s for s in same if not words.finished(s["word"])]
    if unfinished:
        return Take(plan, key, unfinished[0], unfinished[0].get("take") or 1)
    if plan_path:
        edited = [s for s in ledger.sessions_from_file(plan_path)
                  if s.get("plan_key") != key and not words.finished(s["word"])]
        if edited:
            session = edited[0]
            counts = ledger.catalog.progress(session["id"])
            try:
                changes = describe_changes(parse_plan(session["plan_toml"]), plan)
            except PlanError:
                changes = []
            raise PlanChanged(session, plan_path, changes, counts["done"], counts["total"])
    if same:
        return Take(plan, key, same[0], same[0].get("take") or 1)      # finished: nothing to do
    return Take(plan, key, None, ledger.next_take(key))


def plan_path_of(path: str | Path | None) -> str | None:
    """How a plan file is remembered: its absolute, resolved path (a relative path means nothing later)."""
    return str(Path(path).resolve()) if path is not None else None


def stored_session_plan(catalog: Path, session_id: int) -> Plan:
    """Session N's stored plan, read without changing the catalog (to open its rig before the runner starts)."""
    ledger = Ledger(catalog, readonly=True)
    try:
        session = ledger.session(session_id)
        if session is None:
            raise TakeRefused(f"there is no session {session_id} in {catalog}; `cinectrl capture status` lists them")
        return stored_plan(session)
    finally:
        ledger.close()

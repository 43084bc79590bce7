"""The gate: which verdicts count, and what they decide. Pure rules: votes and accounts in, a decision out.

Label Studio Community has no roles and lets any member write any annotation, credit it to another account
(`completed_by`) or change another account's verdict. So a verdict counts only when
- it comes from an account registered for review in the catalog (`cinectrl review annotators add`), made
  before that account was removed;
- the account credited with it is the account that last wrote it (`updated_by == completed_by`);
- it is that account's latest verdict on the pair (one account, one vote);
- it was not made while its task showed other data than cinectrl pushed (`Vote.note`, found by
  `annotate/integrity.py` on pull).
Counted review verdicts decide when at least `quorum` accounts voted and all agree; a split is disputed. An
adjudication counts only from an account with the adjudicator role that cast no review verdict on the pair;
when counted adjudications exist and agree, they decide. Gold pairs are judged the same way but never become
train-ready (the catalog refuses it too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

STAGES = ("review", "adjudication")
DECIDED = ("accepted", "rejected")

UNREGISTERED = "account not registered for review (cinectrl review annotators add)"
NO_ACCOUNT = "no account recorded (pulled before accounts were tracked: pull again)"
NO_AUTHOR = "no author record (imported, or written for another account)"
EDITED = "last changed by another account ({user})"
AFTER_REMOVAL = "made after the account was removed"
SUPERSEDED = "superseded by a later verdict of the same account"
NOT_ADJUDICATOR = "adjudication from an account without the adjudicator role"
ADJUDICATOR_VOTED = "adjudicator also voted on this pair"


@dataclass(frozen=True)
class Vote:
    review_id: int
    stage: str
    server: str | None
    account_id: int | None
    updated_by: int | None
    email: str
    verdict: str
    updated_at: float
    note: str | None = None        # a reason found outside these rules (e.g. made on a tampered task)
    editor: str | None = None      # the account that last wrote it, by email, when known


@dataclass(frozen=True)
class Account:
    server: str
    user_id: int
    email: str
    role: str
    removed_at: float | None = None


@dataclass
class Decision:
    state: str
    decided_by: list[str] = field(default_factory=list)
    adjudicated_by: list[str] = field(default_factory=list)
    marks: dict[int, tuple[bool, str | None]] = field(default_factory=dict)   # review id -> (counted, why not)

    @property
    def counted(self) -> list[int]:
        return [rid for rid, (ok, _) in self.marks.items() if ok]


def _admissible(vote: Vote, accounts: Mapping[tuple[str, int], Account]) -> tuple[Account | None, str | None]:
    if vote.server is None or vote.account_id is None:
        return None, NO_ACCOUNT
    account = accounts.get((vote.server, vote.account_id))
    if account is None:
        return None, UNREGISTERED
    if vote.updated_by is None:
        return None, NO_AUTHOR
    if vote.updated_by != vote.account_id:
        return None, EDITED.format(user=vote.editor or f"user {vote.updated_by}")
    if vote.note:
        return None, vote.note
    if account.removed_at is not None and vote.updated_at >= account.removed_at:
        return None, AFTER_REMOVAL
    return account, None


def _latest_per_account(votes: Iterable[Vote], marks: dict[int, tuple[bool, str | None]]) -> dict[tuple, Vote]:
    latest: dict[tuple, Vote] = {}
    for vote in sorted(votes, key=lambda v: (v.updated_at, v.review_id)):
        who = (vote.server, vote.account_id)
        if who in latest:
            marks[latest[who].review_id] = (False, SUPERSEDED)
        latest[who] = vote
        marks[vote.review_id] = (True, None)
    return latest


def _verdict_state(verdicts: Iterable[str]) -> str | None:
    found = set(verdicts)
    if found == {"accept"}:
        return "accepted"
    if found == {"reject"}:
        return "rejected"
    return None


def judge(votes: Iterable[Vote], accounts: Mapping[tuple[str, int], Account], quorum: int) -> Decision:
    """The state of one pair from all its votes (both stages, any server)."""
    votes = list(votes)
    marks: dict[int, tuple[bool, str | None]] = {}
    review_ok, adjudication_ok = [], []
    voted_on_pair = {(v.server, v.account_id) for v in votes if v.stage == "review" and v.account_id is not None}
    for vote in votes:
        account, why = _admissible(vote, accounts)
        if vote.stage == "adjudication" and account is not None:
            if account.role != "adjudicator":
                why = NOT_ADJUDICATOR
            elif (vote.server, vote.account_id) in voted_on_pair:
                why = ADJUDICATOR_VOTED
        if why:
            marks[vote.review_id] = (False, why)
        elif vote.stage == "adjudication":
            adjudication_ok.append(vote)
        else:
            review_ok.append(vote)
    reviewers = _latest_per_account(review_ok, marks)
    adjudicators = _latest_per_account(adjudication_ok, marks)
    if adjudicators:
        state = _verdict_state(v.verdict for v in adjudicators.values())
        if state:
            deciders = sorted(v.email for v in adjudicators.values())
            return Decision(state, deciders, deciders, marks)
        return Decision("disputed", marks=marks)   # adjudicators disagree: still open
    if len(reviewers) >= max(1, quorum):
        state = _verdict_state(v.verdict for v in reviewers.values()) or "disputed"
        decided_by = sorted(v.email for v in reviewers.values()) if state in DECIDED else []
        return Decision(state, decided_by, [], marks)
    return Decision("in_review", marks=marks)

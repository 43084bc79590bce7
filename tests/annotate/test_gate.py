"""The gate's rules on their own (no server): which verdicts count, and what they decide."""

from __future__ import annotations

import pytest

from annotate import gate

S = "ls-test"
ACCOUNTS = {(S, 1): gate.Account(S, 1, "alice@lab", "annotator"),
            (S, 2): gate.Account(S, 2, "bob@lab", "annotator"),
            (S, 3): gate.Account(S, 3, "carol@lab", "adjudicator"),
            (S, 4): gate.Account(S, 4, "dave@lab", "adjudicator"),
            (S, 5): gate.Account(S, 5, "gone@lab", "annotator", removed_at=100.0)}
EMAIL = {1: "alice@lab", 2: "bob@lab", 3: "carol@lab", 4: "dave@lab", 5: "gone@lab", 9: "eve@lab"}
_ids = iter(range(1, 10_000))


def vote(who: int, verdict: str, *, at: float = 10.0, stage: str = "review", by: int | None = -1) -> gate.Vote:
    return gate.Vote(next(_ids), stage, S, who, who if by == -1 else by, EMAIL[who], verdict, at)


def test_quorum_of_agreeing_accounts_decides_and_names_them():
    d = gate.judge([vote(1, "accept"), vote(2, "accept")], ACCOUNTS, quorum=2)
    assert (d.state, d.decided_by, d.adjudicated_by) == ("accepted", ["alice@lab", "bob@lab"], [])
    assert gate.judge([vote(1, "reject"), vote(2, "reject")], ACCOUNTS, 2).state == "rejected"
    assert gate.judge([vote(1, "reject"), vote(2, "accept")], ACCOUNTS, 2).state == "disputed"
    assert gate.judge([vote(1, "accept")], ACCOUNTS, 2).state == "in_review"


def test_one_account_one_vote_latest_wins():
    first, second = vote(1, "accept", at=1), vote(1, "accept", at=2)
    d = gate.judge([first, second], ACCOUNTS, quorum=2)
    assert d.state == "in_review"                      # two verdicts, one account: no quorum
    assert d.marks[first.review_id] == (False, gate.SUPERSEDED) and d.marks[second.review_id] == (True, None)
    changed = gate.judge([vote(1, "accept", at=1), vote(1, "reject", at=5), vote(2, "reject")], ACCOUNTS, 2)
    assert changed.state == "rejected"


@pytest.mark.parametrize("bad, why", [
    (lambda: vote(9, "accept"), gate.UNREGISTERED),                            # an account nobody registered
    (lambda: vote(2, "accept", by=1), gate.EDITED.format(user="user 1")),            # written by alice, credited to bob
    (lambda: vote(2, "accept", by=None), gate.NO_AUTHOR),                     # imported with completed_by
    (lambda: vote(5, "accept", at=150.0), gate.AFTER_REMOVAL),                 # after the account was removed
    (lambda: gate.Vote(next(_ids), "review", None, None, None, "old", "accept", 1.0), gate.NO_ACCOUNT),
])
def test_verdicts_that_do_not_count(bad, why):
    v = bad()
    d = gate.judge([vote(1, "accept"), v], ACCOUNTS, quorum=2)
    assert d.state == "in_review" and d.marks[v.review_id] == (False, why)


def test_verdict_before_removal_still_counts():
    d = gate.judge([vote(1, "accept"), vote(5, "accept", at=50.0)], ACCOUNTS, 2)
    assert d.state == "accepted"


def test_adjudication_only_from_an_adjudicator_who_did_not_vote():
    split = [vote(1, "accept"), vote(3, "reject")]    # carol (adjudicator) voted as a reviewer
    by_annotator = vote(2, "accept", stage="adjudication")
    by_voter = vote(3, "reject", stage="adjudication")
    d = gate.judge([*split, by_annotator, by_voter], ACCOUNTS, 2)
    assert d.state == "disputed"
    assert d.marks[by_annotator.review_id] == (False, gate.NOT_ADJUDICATOR)
    assert d.marks[by_voter.review_id] == (False, gate.ADJUDICATOR_VOTED)
    d = gate.judge([*split, vote(4, "accept", stage="adjudication")], ACCOUNTS, 2)
    assert (d.state, d.decided_by, d.adjudicated_by) == ("accepted", ["dave@lab"], ["dave@lab"])


def test_a_voter_cannot_settle_their_own_split_even_as_adjudicator():
    d = gate.judge([vote(1, "accept"), vote(4, "reject"), vote(4, "reject", stage="adjudication", at=20)], ACCOUNTS, 2)
    assert d.state == "disputed"


def test_adjudicators_who_disagree_leave_the_pair_open():
    split = [vote(1, "accept"), vote(2, "reject")]
    d = gate.judge([*split, vote(3, "accept", stage="adjudication"), vote(4, "reject", stage="adjudication")],
                   ACCOUNTS, 2)
    assert d.state == "disputed"

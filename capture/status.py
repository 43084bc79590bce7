"""The one vocabulary a capture session's state is said in: the runner, `capture status`, the report, the
exit codes of `capture run`.

The catalog's `sessions.status` column has a fixed CHECK (planned, running, paused, done, failed, aborted)
that other stages read; the runner's finer word is kept beside it in `sessions.state` (migration 4), and
`word()` turns a row back into the word everybody shows. `INTERRUPTED` is never stored: it is what a
session left `running` by a process that is gone (kill -9, power cut) is called.
"""

from __future__ import annotations

PLANNED = "planned"
RUNNING = "running"
PAUSED = "paused"            # stopped cleanly by the operator (Ctrl-C, --stop-after): rerun resumes
SUSPENDED = "suspended"      # stopped cleanly by a suspender (disk full, camera gone): fix it, rerun resumes
COMPLETE = "complete"
FAILED = "failed"            # a point failed every attempt, or the rig refused: check it, rerun resumes
ABORTED = "aborted"
INTERRUPTED = "interrupted (owner gone)"

WORDS = (PLANNED, RUNNING, PAUSED, SUSPENDED, COMPLETE, FAILED, ABORTED)

# word -> sessions.status (the catalog's CHECK vocabulary)
_STORED = {PLANNED: "planned", RUNNING: "running", PAUSED: "paused", SUSPENDED: "paused", COMPLETE: "done",
           FAILED: "failed", ABORTED: "aborted"}

MEANING = {
    PLANNED: "every point is in the ledger; nothing shot yet",
    RUNNING: "a process is shooting it now",
    PAUSED: "stopped by the operator; rerun the same command to resume",
    SUSPENDED: "stopped until a condition clears (disk space, camera); fix it and rerun to resume",
    COMPLETE: "every point done; outputs built",
    FAILED: "stopped after a point failed every attempt or the rig refused; check the rig and rerun to resume",
    ABORTED: "given up; start a new take",
    INTERRUPTED: "its process died (kill -9, crash, power cut); rerun to resume: the next run takes it over",
}

EXIT_CODES = {COMPLETE: 0, PAUSED: 3, SUSPENDED: 3, FAILED: 1, ABORTED: 1, RUNNING: 1, PLANNED: 1}


def stored(word: str) -> str:
    """The `sessions.status` value a word is stored as."""
    if word not in _STORED:
        raise ValueError(f"session state {word!r} is not one of {', '.join(WORDS)}")
    return _STORED[word]


def word(status: str | None, state: str | None = None, *, owner_alive: bool | None = None) -> str:
    """The word for a `sessions` row; `owner_alive=False` turns a 'running' row into INTERRUPTED."""
    if state in _STORED and _STORED[state] == status:
        result = state
    else:
        result = next((w for w, s in _STORED.items() if s == status and w != SUSPENDED), status or PLANNED)
    if result == RUNNING and owner_alive is False:
        return INTERRUPTED
    return result


def finished(word_: str) -> bool:
    """A finished session is not resumed by a rerun (a new take is asked for)."""
    return word_ in (COMPLETE, ABORTED)

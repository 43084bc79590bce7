"""The one vocabulary a capture session's state is said in: the runner, `capture status`, the report, the
exit codes of `capture run`.

The catalog's `sessions.status` column has a fixed CHECK (planned, running, paused, done, failed, aborted)
that other stages read; the runner's finer word is kept beside it in `sessions.state` (migration 4), and
`word()` turns a row back into the word everybody shows. `INTERRUPTED` and `OUTPUTS_INTERRUPTED` are never
stored: they are what a session left `running` / `building outputs` by a process that is gone (kill -9, power
cut) is called. `BUILDING` is stored as the coarse `running`: every point is shot, the clips, pairs, contact
sheet and report are not all built and catalogued yet, so nothing downstream may take the session as done.
"""

from __future__ import annotations

PLANNED = "planned"
RUNNING = "running"
PAUSED = "paused"            # stopped cleanly by the operator (Ctrl-C, --stop-after): rerun resumes
SUSPENDED = "suspended"      # stopped cleanly by a suspender (disk full, camera gone): fix it, rerun resumes
BUILDING = "building outputs"   # every point shot; clips, pairs, contact sheet, report being built
COMPLETE = "complete"            # every point shot AND every output built and catalogued
FAILED = "failed"            # a point failed every attempt, or the rig refused: check it, rerun resumes
ABORTED = "aborted"
INTERRUPTED = "interrupted (owner gone)"
OUTPUTS_INTERRUPTED = "interrupted while building outputs (owner gone)"

WORDS = (PLANNED, RUNNING, PAUSED, SUSPENDED, BUILDING, COMPLETE, FAILED, ABORTED)

# word -> sessions.status (the catalog's CHECK vocabulary)
_STORED = {PLANNED: "planned", RUNNING: "running", PAUSED: "paused", SUSPENDED: "paused", BUILDING: "running",
           COMPLETE: "done",
           FAILED: "failed", ABORTED: "aborted"}

MEANING = {
    PLANNED: "every point is in the ledger; nothing shot yet",
    RUNNING: "a process is shooting it now",
    PAUSED: "stopped by the operator; rerun the same command to resume",
    SUSPENDED: "stopped until a condition clears (disk space, camera); fix it and rerun to resume",
    BUILDING: "every point shot; a process is building its clips, pairs, contact sheet and report now",
    COMPLETE: "every point done; clips, pairs, contact sheet and report built and catalogued",
    FAILED: "stopped after a point failed every attempt or the rig refused; check the rig and rerun to resume",
    ABORTED: "given up; start a new take",
    INTERRUPTED: "its process died (kill -9, crash, power cut); rerun to resume: the next run takes it over",
    OUTPUTS_INTERRUPTED: "every point is shot but its process died while building the outputs; rerun the same "
                         "command: it builds only what is missing",
}

EXIT_CODES = {COMPLETE: 0, PAUSED: 3, SUSPENDED: 3, FAILED: 1, ABORTED: 1, RUNNING: 1, PLANNED: 1, BUILDING: 1}

# words a live process is behind (a dead owner turns them into the interrupted words)
ACTIVE = {RUNNING: INTERRUPTED, BUILDING: OUTPUTS_INTERRUPTED}


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
        result = next((w for w, s in _STORED.items() if s == status and w not in (SUSPENDED, BUILDING)),
                      status or PLANNED)
    if result in ACTIVE and owner_alive is False:
        return ACTIVE[result]
    return result


def finished(word_: str) -> bool:
    """A finished session is not resumed by a rerun (a new take is asked for)."""
    return word_ in (COMPLETE, ABORTED)

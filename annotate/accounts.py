"""Reviewer accounts: created on the Label Studio server, registered with a role in the catalog.

Label Studio Community has no roles, so the role lives in the catalog (`review_accounts`), where the gate reads
it: only registered accounts' verdicts count, and only adjudicators' adjudications. An account is created the
way Label Studio itself invites people (the organization's invite link + the signup form), so the same code
works on our local server and on an external one; its password is never stored by cinectrl. Removing an account
takes it out of the organization (it can no longer open any project) and stops its later verdicts counting.
"""

from __future__ import annotations

import html
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx

from capture.catalog import Catalog

from . import gate
from .server import Connection, ServerError, request, unreachable, whoami

ROLES = ("annotator", "adjudicator")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_FORM_ERRORS = re.compile(r'class="[^"]*error[^"]*"[^>]*>(.*?)</(?:ul|div|p|span)>', re.S)


@dataclass(frozen=True)
class AddResult:
    email: str
    user_id: int
    role: str
    created: bool            # a new account on the server (else an existing one was registered)
    password: str | None     # the password set, when cinectrl generated it (shown once, never stored)
    previous_role: str | None = None


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def registry(cat: Catalog) -> dict[tuple[str, int], gate.Account]:
    """Every registered account (removed ones too: their earlier verdicts still count)."""
    return {(r[0], r[1]): gate.Account(r[0], r[1], r[2], r[3], r[4]) for r in cat.conn.execute(
        "SELECT server, user_id, email, role, removed_at FROM review_accounts")}


def listed(cat: Catalog, server_key: str) -> list[dict[str, Any]]:
    return cat.rows("SELECT email, role, user_id, added_at, removed_at FROM review_accounts WHERE server = ? "
                    "ORDER BY removed_at IS NOT NULL, role, email", (server_key,))


def server_users(conn: Connection) -> dict[int, str]:
    """Members of the token's organization on the server: id -> email (removed members read 'Deleted')."""
    return {int(u["id"]): str(u.get("email") or u.get("username") or u["id"])
            for u in request(conn, "GET", "/api/users/").json()}


PASSWORD_LENGTH = (8, 128)   # Label Studio 1.23: AUTH_PASSWORD_MIN_LENGTH / _MAX_LENGTH (core/settings/base.py)


def check_password(password: str) -> str:
    """Refuse, before anything reaches the server, a password Label Studio's signup would refuse by length."""
    low, high = PASSWORD_LENGTH
    if not low <= len(password) <= high:
        raise ServerError(f"a password of {len(password)} characters is refused: Label Studio needs {low} to {high} "
                          "characters (or pass --generate-password)")
    return password


def check_email(email: str) -> str:
    return _check_email(email)


def _check_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise ServerError(f"{email!r} is not an email address: Label Studio accounts are named by email "
                          "(e.g. ana@lab.example)")
    return email


def _signup(conn: Connection, email: str, password: str) -> None:
    """Create the account through the organization's invite link, as a person following it would."""
    invite = request(conn, "GET", "/api/invite").json()["token"]
    path = f"/user/signup/?token={invite}"
    try:
        with httpx.Client(base_url=conn.url, follow_redirects=False, timeout=60) as web:
            web.get(path)
            r = web.post(path, data={"email": email, "password": password,
                                     "csrfmiddlewaretoken": web.cookies.get("csrftoken", "")},
                         headers={"Referer": conn.url + path})
    except httpx.HTTPError as exc:
        raise unreachable(conn, exc) from None
    if r.status_code in (301, 302, 303):
        return
    errors = [re.sub(r"<[^>]+>", " ", m) for m in _FORM_ERRORS.findall(r.text)]
    why = "; ".join(" ".join(html.unescape(e).split()) for e in errors if e.strip()) or f"HTTP {r.status_code}"
    if "already exists" in why:
        raise ServerError(f"{email} has an account on {conn.url} but is not a member of its organization (removed "
                          "earlier?); Label Studio Community cannot take a removed member back: use another email")
    raise ServerError(f"Label Studio at {conn.url} did not create {email}: {why}")


def add(cat: Catalog, conn: Connection, email: str, *, role: str = "annotator",
        password: str | None = None) -> AddResult:
    """Register `email` for review with `role`, creating the account (with `password`) if the server has none.
    An existing account keeps its password; registering it again changes its role."""
    if role not in ROLES:
        raise ServerError(f"role {role!r} is not one of {', '.join(ROLES)}")
    email = _check_email(email)
    known = cat.rows("SELECT user_id, role, removed_at FROM review_accounts WHERE server = ? AND email = ?",
                     (conn.key, email))
    if known and known[0]["removed_at"] is not None:
        raise ServerError(f"{email} was removed from this server's organization; Label Studio Community cannot "
                          "take a removed member back: register the person under another email")
    users = {e: uid for uid, e in server_users(conn).items()}
    created = email not in users
    generated = None
    if created:
        if password is None:
            password = generated = generate_password()
        _signup(conn, email, check_password(password))
        users = {e: uid for uid, e in server_users(conn).items()}
        if email not in users:
            raise ServerError(f"Label Studio at {conn.url} accepted the signup of {email} but does not list it "
                              "among the organization's members; check the server log")
    user_id = users[email]
    previous = known[0]["role"] if known else None
    with cat.transaction():
        cat.conn.execute(
            "INSERT INTO review_accounts (server, user_id, email, role, added_at) VALUES (?,?,?,?,?) "
            "ON CONFLICT (server, user_id) DO UPDATE SET email = excluded.email, role = excluded.role",
            (conn.key, user_id, email, role, time.time()))
    return AddResult(email, user_id, role, created, generated, previous)


def remove(cat: Catalog, conn: Connection, email: str) -> dict[str, Any]:
    """Take the account out of the organization and stop counting its verdicts from now on."""
    email = _check_email(email)
    row = cat.rows("SELECT user_id, role, removed_at FROM review_accounts WHERE server = ? AND email = ?",
                   (conn.key, email))
    members = server_users(conn)                 # a removed member is listed under a masked email
    user_id = row[0]["user_id"] if row else {e: uid for uid, e in members.items()}.get(email)
    if user_id is None:
        raise ServerError(f"no account {email} on {conn.url} (see `cinectrl review annotators list`)")
    me = whoami(conn)
    if user_id == me["id"]:
        raise ServerError(f"{email} is the account whose token cinectrl uses: it cannot remove itself")
    if members.get(user_id) == email:
        request(conn, "DELETE", f"/api/organizations/{me['active_organization']}/memberships/{user_id}")
    now = time.time()
    with cat.transaction():
        if row:
            cat.conn.execute("UPDATE review_accounts SET removed_at = coalesce(removed_at, ?) WHERE server = ? "
                             "AND user_id = ?", (now, conn.key, user_id))
        else:
            cat.conn.execute("INSERT INTO review_accounts (server, user_id, email, role, added_at, removed_at) "
                             "VALUES (?,?,?,?,?,?)", (conn.key, user_id, email, "annotator", now, now))
    return {"email": email, "user_id": user_id, "was_registered": bool(row)}

"""The console's local accounts: argon2 password hashes and per-site roles.

A user holds one role per site (``*``: every site): ``viewer`` reads, ``responder`` also
acknowledges and resolves, ``admin`` also sees every device. What a user may do with an
alert is decided by the alert's site, so a responder at one site is a viewer, or nothing,
at another.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from edge.central.database import Connection
from edge.core.errors import EdgeError

ROLES = ("viewer", "responder", "admin")
ALL_SITES = "*"
MIN_PASSWORD = 10
NAME_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"
_hasher = PasswordHasher()
# verified against when the name is unknown, so a wrong name takes as long as a wrong password
_DUMMY_HASH = _hasher.hash("not-a-password-of-anyone")


@dataclass(frozen=True)
class User:
    name: str
    grants: dict[str, str] = field(default_factory=dict)  # site (or "*") -> role

    def role_at(self, site: str) -> str | None:
        roles = [r for s, r in self.grants.items() if s in (site, ALL_SITES)]
        return max(roles, key=ROLES.index) if roles else None

    def may(self, site: str, role: str) -> bool:
        """Holds ``role`` or a higher one at ``site``."""
        held = self.role_at(site)
        return held is not None and ROLES.index(held) >= ROLES.index(role)

    @property
    def sites(self) -> set[str] | None:
        """The sites this user sees; None: every site."""
        return None if ALL_SITES in self.grants else set(self.grants)

    @property
    def is_admin(self) -> bool:
        return self.grants.get(ALL_SITES) == "admin"


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise EdgeError(f"the password is too short ({len(password)} characters)",
                        f"use at least {MIN_PASSWORD}")


def add_user(db: Connection, name: str, role: str, site: str | None,
             password: str | None) -> bool:
    """Create the user (``password`` needed), or give an existing one ``role`` at ``site``;
    True when the user is new."""
    if not re.match(NAME_PATTERN, name):
        raise EdgeError(f"user name {name!r}: use letters, digits and . _ @ - (up to 64)")
    if role not in ROLES:
        raise EdgeError(f"role {role!r}: use one of {', '.join(ROLES)}")
    with db.transaction():
        exists = db.scalar("SELECT 1 FROM users WHERE name = ?", (name,)) is not None
        if not exists:
            if password is None:
                raise EdgeError(f"a new user ({name}) needs a password")
            check_password(password)
            db.execute("INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?)",
                       (name, _hasher.hash(password), time.time()))
        db.execute("INSERT INTO grants (user_name, site, role) VALUES (?, ?, ?) "
                   "ON CONFLICT (user_name, site) DO UPDATE SET role = excluded.role",
                   (name, site or ALL_SITES, role))
    return not exists


def remove_user(db: Connection, name: str) -> bool:
    with db.transaction():
        db.execute("DELETE FROM grants WHERE user_name = ?", (name,))
        return db.execute("DELETE FROM users WHERE name = ?", (name,)) == 1


def load_user(db: Connection, name: str) -> User | None:
    rows = db.query("SELECT g.site, g.role FROM users u JOIN grants g ON g.user_name = u.name "
                    "WHERE u.name = ?", (name,))
    if not rows and db.scalar("SELECT 1 FROM users WHERE name = ?", (name,)) is None:
        return None
    return User(name, {site: role for site, role in rows})


def list_users(db: Connection) -> list[User]:
    """Every user with their grants, in one query."""
    users: dict[str, User] = {}
    for name, site, role in db.query("SELECT u.name, g.site, g.role FROM users u LEFT JOIN "
                                     "grants g ON g.user_name = u.name ORDER BY u.name"):
        user = users.setdefault(name, User(name))
        if site is not None:
            user.grants[site] = role
    return list(users.values())


def verify(db: Connection, name: str, password: str) -> User | None:
    """The user when the password is right; None otherwise (unknown name included)."""
    stored = db.scalar("SELECT password_hash FROM users WHERE name = ?", (name,))
    try:
        _hasher.verify(stored or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if stored is None:
        return None
    if _hasher.check_needs_rehash(stored):
        with db.transaction():
            db.execute("UPDATE users SET password_hash = ? WHERE name = ?",
                       (_hasher.hash(password), name))
    return load_user(db, name)

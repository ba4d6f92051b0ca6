"""Who is asking, and may they: the console's log-in session and its CSRF token.

- The session is Starlette's signed cookie (itsdangerous, keyed by the session key),
  ``HttpOnly``, ``SameSite=Strict``, ``Secure`` unless ``central.secure_cookies`` is off,
  and it expires after ``central.session_hours``. It holds the user's name, the time of
  log-in and the CSRF token, never a password or a role: the user is loaded from the
  database on every request, so a removed user or a withdrawn grant counts at once.
- Every form carries the session's CSRF token; a POST without the right one is refused
  (403) before it does anything. The log-in form has one too (log-in CSRF).
- Wrong passwords are throttled per name and per address (``LoginThrottle``).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from pathlib import Path

from starlette.requests import Request

from edge.central.accounts import User, load_user
from edge.central.database import Database
from edge.secrets import kept_secret

CSRF_FIELD = "csrf"


def session_key(state_dir: Path) -> str:
    """The credential `central-session-key` (or $EDGE_CENTRAL_SESSION_KEY), else one made
    once and kept (0600) in the collector's folder: replicas behind one address need the
    credential, shared."""
    return kept_secret(state_dir, "central-session-key", "EDGE_CENTRAL_SESSION_KEY").decode()


def csrf_token(request: Request) -> str:
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


def csrf_ok(request: Request, submitted: object) -> bool:
    expected = request.session.get(CSRF_FIELD)
    return (isinstance(expected, str) and isinstance(submitted, str)
            and hmac.compare_digest(expected, submitted))


def log_in(request: Request, user: User) -> None:
    request.session.clear()  # a new session at log-in: no fixation
    request.session.update({"user": user.name, "at": time.time(),
                            CSRF_FIELD: secrets.token_urlsafe(32)})


def current_user(request: Request, database: Database, session_hours: float) -> User | None:
    name, at = request.session.get("user"), request.session.get("at")
    if not isinstance(name, str) or not isinstance(at, (int, float)):
        return None
    if time.time() - at > session_hours * 3600:
        request.session.clear()
        return None
    return load_user(database.connection(), name)


class LoginThrottle:
    """Wrong passwords are limited per name and per address: after ``limit`` failures in
    ``window_s`` further tries are refused until the oldest failure leaves the window. A
    guesser gets a handful of tries an hour; a person who mistypes waits minutes. Kept in
    memory, per replica (a restart forgets it, which only helps the legitimate user)."""

    def __init__(self, limit: int = 5, window_s: float = 900.0) -> None:
        self.limit, self.window_s = limit, window_s
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] > self.window_s:
            times.popleft()
        return times

    def wait_s(self, keys: tuple[str, ...], now: float | None = None) -> float:
        """Seconds until a try is allowed again; 0 when it is allowed now."""
        now = time.time() if now is None else now
        waits = [self.window_s - (now - times[0]) for key in keys
                 if len(times := self._recent(key, now)) >= self.limit]
        return max(waits, default=0.0)

    def failed(self, keys: tuple[str, ...], now: float | None = None) -> None:
        now = time.time() if now is None else now
        for key in keys:
            self._recent(key, now).append(now)
        if len(self._failures) > 100_000:  # a flood of made-up names: forget the idle ones
            self._failures = {k: v for k, v in self._failures.items() if v}

    def succeeded(self, keys: tuple[str, ...]) -> None:
        for key in keys:
            self._failures.pop(key, None)

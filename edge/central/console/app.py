"""The web console: server-rendered pages for the people who act on alerts.

Starlette with Jinja2 templates (autoescaped) and one stylesheet, all shipped in the
package: no script, no build step, no CDN, so a strict Content-Security-Policy holds.
Every page and the CSV export need a log-in; what a user sees is limited to their sites
in the SQL itself (``queries``), and acting on an alert needs ``responder`` at its site.
``/metrics`` takes a bearer token (the credential `central-metrics-token`, or
$EDGE_CENTRAL_METRICS_TOKEN) or a log-in.
"""

from __future__ import annotations

import csv
import hmac
import io
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from edge.central.accounts import User, verify
from edge.central.collector import IngestCounts
from edge.central.console.chart import severity, timeline_svg
from edge.central.console.guard import (
    LoginThrottle,
    csrf_ok,
    csrf_token,
    current_user,
    log_in,
    session_key,
)
from edge.central.console.metrics import exposition
from edge.central.database import Database
from edge.central.ledger import ACTIONS, act
from edge.central.queries import AlertFilter, alert, alerts, choices, devices, timeline
from edge.core.errors import EdgeError
from edge.core.logs import get_logger
from edge.secrets import credential
from edge.settings import CentralSettings

HERE = Path(__file__).parent
STATES = ("open", "acknowledged", "resolved")
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; style-src 'self'; img-src 'self'; "
     b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
log = get_logger(__name__)


def _utc(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _ago(epoch: float | None) -> str:
    if epoch is None:
        return "never"
    seconds = max(0, int(time.time() - epoch))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


class SecurityHeaders:
    """The same headers on every response, static files and errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


@dataclass
class Console:
    settings: CentralSettings
    database: Database
    counts: IngestCounts | None = None

    def __post_init__(self) -> None:
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.filters["utc"] = _utc
        self.templates.env.filters["ago"] = _ago
        self.templates.env.filters["severity"] = severity
        self.throttle = LoginThrottle()
        self.metrics_token = credential("central-metrics-token", "EDGE_CENTRAL_METRICS_TOKEN")

    # --- helpers ---------------------------------------------------------------------------
    def page(self, request: Request, name: str, user: User | None, status: int = 200,
             **context: Any) -> Response:
        return self.templates.TemplateResponse(request, name, {
            "user": user, "csrf": csrf_token(request), **context}, status_code=status)

    def user(self, request: Request) -> User | None:
        return current_user(request, self.database, self.settings.session_hours)

    def refuse(self, request: Request, user: User | None, why: str, status: int = 403
               ) -> Response:
        return self.page(request, "refused.html", user, status=status, why=why)

    # --- log-in ----------------------------------------------------------------------------
    def login_form(self, request: Request) -> Response:
        return self.page(request, "login.html", None)

    async def login(self, request: Request) -> Response:
        form = await request.form()
        if not csrf_ok(request, form.get("csrf")):
            return self.refuse(request, None, "The form had expired or was not ours: "
                               "reload the log-in page and try again.")
        name, password = str(form.get("name", ""))[:64], str(form.get("password", ""))
        client = request.client.host if request.client else "unknown"
        keys = (f"name:{name}", f"address:{client}")
        wait_s = self.throttle.wait_s(keys)
        if wait_s > 0:
            log.warning("console_login_throttled", user=name, client=client)
            return self.page(request, "login.html", None, status=429, error=(
                f"Too many wrong passwords: try again in {wait_s / 60:.0f} minutes."))
        user = await run_in_threadpool(lambda: verify(self.database.connection(), name,
                                                      password))
        if user is None:
            self.throttle.failed(keys)
            log.warning("console_login_failed", user=name, client=client)
            return self.page(request, "login.html", None, status=401,
                             error="Wrong name or password.")
        self.throttle.succeeded((f"name:{name}",))
        log_in(request, user)
        log.info("console_login", user=user.name)
        return RedirectResponse("/", status_code=303)

    async def logout(self, request: Request) -> Response:
        form = await request.form()
        if csrf_ok(request, form.get("csrf")):
            request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # --- pages -----------------------------------------------------------------------------
    def _filter(self, request: Request) -> tuple[AlertFilter, list[str]]:
        """The filter from the query string; what could not be read is said, not guessed."""
        query, problems = request.query_params, []

        def day(name: str) -> date | None:
            text = query.get(name, "")
            if not text:
                return None
            try:
                return date.fromisoformat(text)
            except ValueError:
                problems.append(f"{name}: not a date (YYYY-MM-DD)")
                return None

        level = None
        if query.get("level"):
            try:
                level = int(query["level"])
            except ValueError:
                problems.append("level: not a number")
        state = query.get("state", "open")
        if state not in (*STATES, "any"):
            problems.append(f"state: one of {', '.join(STATES)} or any")
            state = "open"
        return AlertFilter(site=query.get("site") or None, device=query.get("device") or None,
                           min_level=level, day_from=day("from"), day_to=day("to"),
                           state=None if state == "any" else state,
                           person=query.get("person") or None), problems

    def alerts_page(self, request: Request) -> Response:
        user = self.user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        wanted, problems = self._filter(request)
        db = self.database.connection()
        rows = alerts(db, wanted, user.sites)
        sites, device_names = choices(db, user.sites)
        return self.page(request, "alerts.html", user, alerts=rows, wanted=wanted,
                         problems=problems, sites=sites, devices=device_names,
                         states=STATES, query=request.url.query,
                         state=request.query_params.get("state", "open"))

    def alert_page(self, request: Request, notice: str | None = None,
                   status: int = 200) -> Response:
        user = self.user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        found = alert(self.database.connection(), request.path_params["message_id"],
                      user.sites)
        if found is None:
            return self.refuse(request, user, "No such alert, or not at a site of yours.", 404)
        row, actions = found
        return self.page(request, "alert.html", user, status=status, alert=row,
                         actions=actions, notice=notice,
                         may_act=user.may(row.site, "responder") and row.state != "resolved")

    async def alert_action(self, request: Request) -> Response:
        user = await run_in_threadpool(self.user, request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        form = await request.form()
        if not csrf_ok(request, form.get("csrf")):
            return self.refuse(request, user, "The form had expired or was not ours "
                               "(no valid CSRF token): nothing was changed.")
        message_id = request.path_params["message_id"]
        action, note = str(form.get("action", "")), str(form.get("note", "")).strip()[:2000]
        return await run_in_threadpool(self._act, request, user, message_id, action, note)

    def _act(self, request: Request, user: User, message_id: str, action: str,
             note: str) -> Response:
        db = self.database.connection()
        found = alert(db, message_id, user.sites)
        if found is None:
            return self.refuse(request, user, "No such alert, or not at a site of yours.", 404)
        row, _actions = found
        if not user.may(row.site, "responder"):
            log.warning("console_action_refused", user=user.name, message_id=message_id)
            return self.refuse(request, user, f"Acknowledging and resolving needs the "
                               f"responder role at site {row.site}; you are "
                               f"{user.role_at(row.site) or 'not'} there.")
        if action not in ACTIONS:
            return self.alert_page(request, "Choose acknowledge or resolve.", 400)
        if action == "resolve" and not note:
            return self.alert_page(request, "Resolving needs a note: what was done.", 400)
        try:
            act(db, message_id, action, note, user.name, time.time())
        except EdgeError as exc:
            return self.alert_page(request, exc.message, 409)
        log.info("console_alert_action", user=user.name, message_id=message_id, action=action)
        return RedirectResponse(f"/alerts/{message_id}", status_code=303)

    def person_page(self, request: Request) -> Response:
        user = self.user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        person = request.path_params["person"]
        rows = timeline(self.database.connection(), person, user.sites)
        return self.page(request, "person.html", user, person=person, alerts=rows,
                         chart=timeline_svg(rows))

    def devices_page(self, request: Request) -> Response:
        user = self.user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        now = time.time()
        rows = devices(self.database.connection(), user.sites)
        return self.page(request, "devices.html", user, devices=[
            (d, d.health(now, self.settings.stale_after_s)) for d in rows],
            stale_after_s=self.settings.stale_after_s)

    def export_csv(self, request: Request) -> Response:
        user = self.user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        wanted, problems = self._filter(request)
        if problems:
            return PlainTextResponse("; ".join(problems), status_code=400)
        rows = alerts(self.database.connection(), wanted, user.sites, limit=None)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["message_id", "site", "device", "person", "hour_start", "hour_end",
                         "level", "label", "anomaly", "state", "received_utc"])
        for row in rows:
            writer.writerow([_cell(v) for v in (
                row.message_id, row.site, row.device, row.person, row.hour_start,
                row.hour_end, row.level, row.label, row.anomaly, row.state,
                _utc(row.received_at))])
        log.info("console_export", user=user.name, rows=len(rows))
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers={
            "content-disposition": f'attachment; filename="edge-alerts-{stamp}.csv"'})

    def metrics(self, request: Request) -> Response:
        bearer = request.headers.get("authorization", "")
        token_ok = bool(self.metrics_token) and hmac.compare_digest(
            bearer.encode(), f"Bearer {self.metrics_token}".encode())
        if not token_ok and self.user(request) is None:
            return PlainTextResponse("log in, or send the central-metrics-token as a "
                                     "bearer token\n", status_code=401)
        return Response(exposition(self.database, self.settings.stale_after_s, self.counts),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    # --- the application -------------------------------------------------------------------
    def app(self) -> Starlette:
        routes = [
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/", self.alerts_page, methods=["GET"]),
            Route("/alerts/{message_id:str}", self.alert_page, methods=["GET"]),
            Route("/alerts/{message_id:str}", self.alert_action, methods=["POST"]),
            Route("/people/{person:str}", self.person_page, methods=["GET"]),
            Route("/devices", self.devices_page, methods=["GET"]),
            Route("/export.csv", self.export_csv, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        ]
        middleware = [
            Middleware(SecurityHeaders),
            Middleware(SessionMiddleware, secret_key=session_key(self.settings.state_dir),
                       session_cookie="edge_console", max_age=int(
                           self.settings.session_hours * 3600), same_site="strict",
                       https_only=self.settings.secure_cookies),
        ]
        return Starlette(routes=routes, middleware=middleware)


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula (device names come off the wire)."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


"""The console in a real browser: Debian's Chromium driven by Playwright (never its own
download), against `edge central run` with a real broker, a real device process and SQLite.

A responder logs in, watches a device go offline, sees an alert arrive, acknowledges it and
downloads the CSV; a wrong password, a form without its CSRF token and a viewer trying to
acknowledge are refused.
"""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from central_support import central_process, start_device

from edge.demos.broker import Broker, free_port, wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
PASSWORD = "correct horse battery"
METRICS_TOKEN = "a-token-for-prometheus-0123456789"


def add_user(folder: Path, name: str, role: str) -> None:
    environment = {**os.environ, "EDGE_CENTRAL__STATE_DIR": str(folder),
                   "EDGE_CONFIG": os.devnull}
    done = subprocess.run([sys.executable, "-m", "edge.cli", "central", "user", "add", name,
                           "--role", role, "--password-stdin"], input=PASSWORD + "\n",
                          env=environment, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[str, Broker, Path]]:
    if not CHROMIUM.is_file():
        pytest.skip("Chromium is not installed (`make test` installs it as root)")
    broker = Broker().start()
    folder = tmp_path / "central"
    add_user(folder, "alice", "responder")
    add_user(folder, "victor", "viewer")
    port = free_port()
    process = central_process(broker.port, folder, f"sqlite:///{folder / 'central.db'}",
                              "console-test", listen_port=port,
                              EDGE_CENTRAL__STALE_AFTER_S="60",
                              EDGE_CENTRAL_METRICS_TOKEN=METRICS_TOKEN)
    url = f"http://127.0.0.1:{port}"
    import urllib.request

    def up() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/login", timeout=1):
                return True
        except OSError:
            return False

    assert wait_until(up, 30, step=0.2), process.stderr.read() if process.poll() else ""
    yield url, broker, tmp_path
    process.send_signal(signal.SIGTERM)
    code = process.wait(20)
    broker.close()
    assert code == 0, process.stderr.read()[-3000:]


def test_log_in_watch_a_device_acknowledge_and_export(console: tuple[str, Broker, Path]
                                                      ) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, broker, folder = console
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(accept_downloads=True)
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))

        # a wrong password is refused, and says so
        page.goto(f"{url}/")
        expect(page).to_have_url(f"{url}/login")
        page.fill("input[name=name]", "alice")
        page.fill("input[name=password]", "not the password")
        with page.expect_response(f"{url}/login") as refused:
            page.click("button[type=submit]")
        assert refused.value.status == 401
        expect(page.locator(".error")).to_have_text("Wrong name or password.")

        # log in; the session cookie is Secure, HttpOnly and SameSite=Strict
        page.fill("input[name=name]", "alice")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Open alerts")
        (cookie,) = page.context.cookies()
        assert (cookie["secure"], cookie["httpOnly"], cookie["sameSite"]) == \
            (True, True, "Strict")

        # a device comes online with one alert, then vanishes: the will says offline
        device = start_device(folder / "device", broker.port, "--submit", "1", "--stay")
        page.goto(f"{url}/devices")
        row = page.locator("tr[data-device=entrance-01] .health")
        _reload_until(page, lambda: row.count() == 1 and row.inner_text() == "online")
        device.send_signal(signal.SIGKILL)
        device.wait(10)
        _reload_until(page, lambda: row.inner_text() == "offline (connection lost)")

        # the alert has arrived: open it, acknowledge it with a note
        page.goto(f"{url}/")
        _reload_until(page, lambda: page.locator("#alerts tbody tr.state-open").count() == 1)
        page.locator("#alerts tbody tr a").first.click()
        expect(page.locator("#reveal-command")).to_contain_text("edge reveal ")
        message_id = page.url.rsplit("/", 1)[1]
        page.fill("textarea[name=note]", "called the team lead")
        page.click("button[value=acknowledge]")
        expect(page.locator("#state")).to_have_text("acknowledged")
        expect(page.locator("#actions tbody tr td")).to_have_text(
            [re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"), "alice", "acknowledge",
             "called the team lead"])

        # the pseudonym's timeline: a chart drawn on the server, one dot per alerted hour
        page.click(".facts a[href^='/people/']")
        expect(page.locator("svg.timeline circle")).to_have_count(1)
        expect(page.locator("#timeline tbody tr")).to_have_count(1)
        page.go_back()

        # a form posted without its CSRF token changes nothing
        answer = page.request.post(f"{url}/alerts/{message_id}",
                                   form={"action": "resolve", "note": "forged"})
        assert answer.status == 403
        page.reload()
        expect(page.locator("#state")).to_have_text("acknowledged")

        # the CSV of what the filter shows
        page.goto(f"{url}/?state=any")
        with page.expect_download() as download:
            page.click("#export")
        rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
        assert [(r["message_id"], r["state"], r["site"]) for r in rows] == \
            [(message_id, "acknowledged", "hq")]
        page.screenshot(path=str(folder / "console.png"), full_page=True)
        # everything the pages load comes from the console itself: no CDN, no font service
        assert requested and all(u.startswith(url) for u in requested), requested

        # a viewer sees the alert but cannot acknowledge it, even with a valid token
        viewer = browser.new_page()
        viewer.goto(f"{url}/login")
        viewer.fill("input[name=name]", "victor")
        viewer.fill("input[name=password]", PASSWORD)
        viewer.click("button[type=submit]")
        viewer.goto(f"{url}/alerts/{message_id}")
        expect(viewer.locator("form.act")).to_have_count(0)
        token = viewer.locator("form.logout input[name=csrf]").get_attribute("value")
        answer = viewer.request.post(f"{url}/alerts/{message_id}", form={
            "action": "resolve", "note": "not mine to do", "csrf": token or ""})
        assert answer.status == 403 and "responder role" in answer.text()
        viewer.reload()
        expect(viewer.locator("#state")).to_have_text("acknowledged")

        # no page and no export without a log-in
        anonymous = browser.new_context().new_page()
        for path in ("/", "/devices", f"/alerts/{message_id}", "/export.csv"):
            anonymous.goto(f"{url}{path}")
            expect(anonymous).to_have_url(f"{url}/login")
        assert anonymous.request.get(f"{url}/metrics").status == 401
        assert anonymous.request.get(f"{url}/metrics", headers={
            "authorization": "Bearer a-wrong-token"}).status == 401
        scraped = anonymous.request.get(f"{url}/metrics", headers={
            "authorization": f"Bearer {METRICS_TOKEN}"})
        assert scraped.status == 200
        metrics = scraped.text()
        assert 'edge_central_devices{health="offline"} 1.0' in metrics
        assert 'edge_central_alerts{level="2",state="acknowledged"} 1.0' in metrics
        assert "edge_central_ingest_lag_seconds" in metrics
        browser.close()


def _reload_until(page: Page, condition: Callable[[], bool], timeout: float = 20) -> None:
    """The console has no script: a person reloads to see what changed; so does the test."""
    def check() -> bool:
        if condition():
            return True
        page.reload()
        return condition()

    assert wait_until(check, timeout, step=0.5)

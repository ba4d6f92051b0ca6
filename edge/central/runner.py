"""``edge central run``: the collector and its console in one process, until SIGTERM.

uvicorn serves the console in the main thread; the collector runs in its own threads and
is stopped after the server, so what arrived is committed and acknowledged before the
process ends (the broker keeps the rest for the session). uvicorn's own signal handling is
replaced by ours: it re-raises SIGTERM once the server is down, which would end the process
before the collector's clean stop.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from edge.central.collector import Collector
from edge.central.console.app import Console
from edge.central.database import Database
from edge.core.logs import get_logger
from edge.sdnotify import Notifier
from edge.settings import CentralSettings

if TYPE_CHECKING:
    import uvicorn

log = get_logger(__name__)


def run_central(settings: CentralSettings, *, client_id: str | None = None) -> int:
    database = Database.from_settings(settings)
    collector = Collector(settings, database, client_id=client_id).start()
    notifier = Notifier()
    try:
        if settings.listen_port == 0:
            notifier.send("READY=1", "STATUS=collecting (no console)")
            stopped = threading.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stopped.set())
            stopped.wait()
        else:
            _serve(settings, Console(settings, database, collector.counts), notifier)
    finally:
        notifier.send("STOPPING=1")
        collector.stop()
        database.close()
    return 0


def _serve(settings: CentralSettings, console: Console, notifier: Notifier) -> None:
    import uvicorn

    config = uvicorn.Config(
        console.app(), host=settings.listen_host, port=settings.listen_port,
        log_level="warning", access_log=False, server_header=False, proxy_headers=False,
        ssl_certfile=str(settings.https_cert_file) if settings.https_cert_file else None,
        ssl_keyfile=str(settings.https_key_file) if settings.https_key_file else None)
    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    server = Server(config)

    def on_signal(*_args: object) -> None:
        server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    scheme = "https" if settings.https_cert_file else "http"
    log.info("console_listening", url=f"{scheme}://{settings.listen_host}:"
             f"{settings.listen_port}/")
    watcher = threading.Thread(target=_ready_when_started, args=(server, notifier),
                               daemon=True)
    watcher.start()
    server.run()


def _ready_when_started(server: uvicorn.Server, notifier: Notifier) -> None:
    """READY=1 once uvicorn listens (it has no hook for that; its `started` flag it is)."""
    for _ in range(600):
        if server.started:
            notifier.send("READY=1", "STATUS=collecting; console up")
            return
        time.sleep(0.1)

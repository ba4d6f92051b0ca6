"""End to end: the real service on a generated clip, a real broker, a notify socket."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from mqtt_support import Subscriber

from edge.cli import main
from edge.core.clock import parse_utc
from edge.core.errors import EdgeError
from edge.demos.broker import Broker, wait_until
from edge.demos.clip import (
    ENROLMENT_VARIANTS,
    demo_plan,
    enroll_sample_people,
    render_frame,
    write_clip,
)
from edge.sdnotify import Notifier
from edge.service.lifecycle import Service
from edge.service.status import read_status
from edge.settings import Settings
from edge.store import Store
from edge.vision.loader import VisionModels

REPO = Path(__file__).resolve().parents[1]
STATE_FILES = {"edge.sqlite3", "edge.sqlite3-wal", "edge.sqlite3-shm", "status.json",
               "pseudonym-key.secret"}
LAWFUL = {"purpose": "research", "legal_basis": "test on public-domain photos"}


class NotifyListener:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: list[str] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        self.sock.close()


def tree(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def clip_run(tmp_path: Path, models_dir: Path, vision_models: VisionModels,
             port: int) -> tuple[Path, Settings]:
    """A 14 s clip (28 replayed hours; the smile fades at hour 20), two people enrolled.

    Descriptors are computed inline, so which frames are analysed does not depend on how
    busy the machine is (with the worker process, identities arrive a machine-dependent
    number of frames later). The worker's path end to end: the crash test below."""
    clip = write_clip(demo_plan(seconds=14, anomaly_from_s=10), tmp_path / "clip.avi")
    state = tmp_path / "state"
    with Store(state) as store:
        enroll_sample_people(store, vision_models, "C-1")
    return state, Settings(
        device={"id": "entrance-01", "site": "hq"}, models={"dir": models_dir},
        camera={"source": f"file://{clip}", "replay_speed": 7200},
        analytics={"min_history_hours": 8}, mqtt={"port": port},
        identity={"worker_process": False},
        storage={"state_dir": state}, deployment=LAWFUL)


@pytest.fixture
def restore_signals():
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_clip_to_alerts(tmp_path: Path, models_dir: Path, vision_models: VisionModels,
                        restore_signals: None) -> None:
    broker = Broker(persistence=False).start()
    subscriber = Subscriber(broker.port, ["edge/#"]).start()
    state, settings = clip_run(tmp_path, models_dir, vision_models, broker.port)
    listener = NotifyListener(tmp_path / "notify.sock")
    before_repo, before_tmp = tree(REPO), tree(tmp_path)
    try:
        service = Service(settings, notifier=Notifier(str(listener.path)))
        assert service.run() == 0
        stats = service.stats
        # every frame processed, each track described once, not every frame
        assert stats.frames == 14 * 24
        assert stats.descriptors < stats.faces / 5
        assert stats.unknown_faces > 100  # the stranger, dropped in every frame
        with Store(state) as store:
            assert {p.person_id for p in store.people()} == {"astronaut", "cameraman"}
            # 14 s of clip = 28 hours; the frontal astronaut is seen in nearly all of them,
            # the cameraman's three-quarter view is missed now and then
            assert store.hours_kept("astronaut") >= 24
            assert store.hours_kept("cameraman") >= 12
            grades = store.grades("astronaut")
            assert sum(g.status == "graded" for g in grades) >= 10
            risky = [g for g in grades if g.level > 0]
            smile_fades = service.replay_start + timedelta(hours=20)  # second 10 of the clip
            assert risky and all(g.hour_start >= smile_fades - timedelta(hours=1)
                                 for g in risky)
            assert store.outbox_counts() == {}
        assert wait_until(lambda: len(subscriber.message_ids()) >= len(risky), 10)
        assert subscriber.status_reasons()[-1] == (b"offline", "stopped")
        assert read_status(state)["state"] == "stopped"
        kinds = {m.split("\n")[0].split("=")[0] for m in listener.messages}
        assert {"READY", "WATCHDOG", "STATUS", "STOPPING"} <= kinds
    finally:
        listener.close()
        subscriber.stop()
        broker.close()
    # nothing but the state store (and its key and status) was written to disk
    created = (tree(tmp_path) - before_tmp) | (tree(REPO) - before_repo)
    assert {p.name for p in created} <= STATE_FILES, created
    assert all(p.parent == state for p in created)
    # ... and none of it holds image data: no JPEG/PNG/AVI, no row of any raw frame
    plan = demo_plan(seconds=14, anomaly_from_s=10)
    # 32-pixel runs across the astronaut's face (her cell is centred at 160, 120)
    rows = [render_frame(plan, i)[110, 120:152].tobytes() for i in range(0, 336, 37)]
    assert all(np.frombuffer(row, np.uint8).std() > 10 for row in rows)  # not plain background
    for path in created:
        data = path.read_bytes()
        assert b"\xff\xd8\xff" not in data and b"\x89PNG" not in data and b"RIFF" not in data
        assert not any(row in data for row in rows), path


def write_config(tmp_path: Path, models_dir: Path, port: int, lawful: bool) -> Path:
    config = tmp_path / "edge.toml"
    deployment = ('[deployment]\npurpose = "research"\nlegal_basis = "test"\n' if lawful
                  else "")
    config.write_text(f'[device]\nid = "lobby"\nsite = "hq"\n[camera]\nsource = "test://ball"\n'
                      f'width = 320\nheight = 240\n[models]\ndir = "{models_dir}"\n'
                      f'[mqtt]\nport = {port}\n[storage]\nstate_dir = "{tmp_path / "state"}"\n'
                      f"{deployment}")
    return config


def test_run_as_a_process_notify_and_sigterm(tmp_path: Path, models_dir: Path) -> None:
    broker = Broker(persistence=False).start()
    subscriber = Subscriber(broker.port, ["edge/+/+/status"]).start()
    listener = NotifyListener(tmp_path / "notify.sock")
    config = write_config(tmp_path, models_dir, broker.port, lawful=True)
    edge = Path(sys.executable).with_name("edge")
    process = subprocess.Popen([str(edge), "--config", str(config), "run"],
                               env={**os.environ, "NOTIFY_SOCKET": str(listener.path)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: any(m.startswith("READY=1") for m in listener.messages), 60)
        assert wait_until(lambda: any(m == "WATCHDOG=1" for m in listener.messages), 10)
        assert wait_until(lambda: (tmp_path / "state" / "status.json").exists(), 10)
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert wait_until(lambda: subscriber.status_reasons()[-1:] == [(b"offline", "stopped")],
                          10)
        assert any(m.startswith("STOPPING=1") for m in listener.messages)
        status = json.loads((tmp_path / "state" / "status.json").read_text())
        assert status["state"] == "stopped" and status["frames"] > 0
        assert status["camera"] == "test://ball"
        # detection.interval 4 on a scene without faces: the whole of every fourth frame
        by_detection = status["frames_by_detection"]
        assert sum(by_detection.values()) == status["frames"]
        assert by_detection["frame"] == -(-status["frames"] // 4)
        assert set(by_detection) == {"frame", "carried"}
    finally:
        if process.poll() is None:
            process.kill()
        listener.close()
        subscriber.stop()
        broker.close()


def test_run_refuses_without_a_declared_purpose(tmp_path: Path, models_dir: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, models_dir, 1883, lawful=False)
    assert main(["--config", str(config), "run"]) == 2
    err = capsys.readouterr().err
    assert "not allowed until [deployment] purpose" in err and "Lawful use" in err
    assert not (tmp_path / "state").exists()  # refused before touching anything


def test_status_command(tmp_path: Path, models_dir: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, models_dir, 1883, lawful=True)
    assert main(["--config", str(config), "status"]) == 2
    assert "no status yet" in capsys.readouterr().err
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "status.json").write_text('{"state": "running", "frames": 7}')
    assert main(["--config", str(config), "status"]) == 0
    assert "frames" in capsys.readouterr().out


def test_forget_while_the_service_runs(tmp_path: Path, models_dir: Path,
                                      vision_models: VisionModels, restore_signals: None,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Erased mid-run: nothing more is stored or published about the person.

    Every graded hour is published here (``mqtt.min_level = 0``), so the positive controls
    can fail: alerts about the cameraman keep arriving, and so did alerts about the
    astronaut up to her erasure (the pseudonyms are computed right)."""
    from edge.publish.pseudonym import pseudonym, rotation_period
    from edge.secrets import device_key

    broker = Broker(persistence=False).start()
    subscriber = Subscriber(broker.port, ["edge/#"]).start()
    state, settings = clip_run(tmp_path, models_dir, vision_models, broker.port)
    settings = settings.model_copy(update={
        "mqtt": settings.mqtt.model_copy(update={"min_level": 0})})
    removed: dict[str, int] = {}
    forgotten_at: list[datetime] = []

    def forget_at_frame_150(service: Service) -> None:
        if service.stats.frames == 150:  # hour 12; the smile fades at hour 20
            with Store(state) as other:
                removed.update(other.forget("astronaut"))
            forgotten_at.append(service.clock.now())

    try:
        service = Service(settings, on_progress=forget_at_frame_150)
        assert service.run() == 0
        print(f"edge forget removed: {removed}")
        assert removed["people"] == 1 and removed["templates"] == len(ENROLMENT_VARIANTS)
        assert removed["hourly_vectors"] >= 8 and removed["risk_grades"] >= 8
        with Store(state) as store:
            assert store.export("astronaut") is None
            assert store.hours_kept("astronaut") == 0 and store.grades("astronaut") == []
            assert store.hours_kept("cameraman") > 0  # the other person goes on
        key = device_key(state)

        def aliases(person: str) -> set[str]:
            return {pseudonym(person, key, rotation_period(
                service.replay_start + timedelta(days=d), "weekly")) for d in range(3)}

        assert wait_until(lambda: (subscriber.message_ids() and not service.publisher.delivered)
                          or len(subscriber.message_ids()) >= service.publisher.delivered, 10)
        payloads = subscriber.payloads()
        about_her = [p for p in payloads if p["person"] in aliases("astronaut")]
        about_him = [p for p in payloads if p["person"] in aliases("cameraman")]
        assert about_him and about_her  # positive controls: the publisher was delivering
        erased = forgotten_at[0]
        assert all(parse_utc(p["hour_end"]) <= erased for p in about_her), about_her
        assert any(parse_utc(p["hour_start"]) >= erased for p in about_him)
    finally:
        subscriber.stop()
        broker.close()


def test_descriptors_inline_without_a_worker_process(tmp_path: Path, models_dir: Path,
                                                     vision_models: VisionModels,
                                                     restore_signals: None) -> None:
    """`identity.worker_process = false`: no second process, descriptors in the loop."""
    _state, settings = clip_run(tmp_path, models_dir, vision_models, 1)
    settings = settings.model_copy(update={
        "identity": settings.identity.model_copy(update={"worker_process": False})})
    children: list[int] = []
    service = Service(settings, max_frames=48, on_progress=lambda _s: children.append(
        len(multiprocessing.active_children())))
    assert service.run() == 0
    assert service.pipeline.worker is None and max(children) == 0
    assert 3 <= service.stats.descriptors < service.stats.faces / 5  # once per track
    assert service.stats.faces_analysed > 40  # both enrolled people, known from frame 1


def test_a_failed_start_leaves_no_process_behind(tmp_path: Path, models_dir: Path,
                                                 vision_models: VisionModels) -> None:
    """The descriptor worker starts before the camera opens: a bad camera closes it again."""
    _state, settings = clip_run(tmp_path, models_dir, vision_models, 1)
    settings = settings.model_copy(update={
        "identity": settings.identity.model_copy(update={"worker_process": True})})
    broken = settings.model_copy(update={
        "camera": settings.camera.model_copy(update={"source": "nonsense://camera"})})
    with pytest.raises(EdgeError, match="nonsense://camera"):
        Service(broken).start()
    assert multiprocessing.active_children() == []
    # positive control: a good start does leave the worker running, until stop()
    service = Service(settings).start()
    try:
        assert len(multiprocessing.active_children()) == 1
    finally:
        service.stop()
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("every_s", [1, 3600])
def test_a_crash_loses_at_most_a_minute_of_an_open_hour(tmp_path: Path, models_dir: Path,
                                                        vision_models: VisionModels,
                                                        every_s: int) -> None:
    """Open hours are saved every storage.partials_every_s, not only at a clean stop: after
    a SIGKILL the restart finds what the people in view had shown so far this hour. The
    positive control saves hourly, so the same crash finds nothing."""
    clip = write_clip(demo_plan(seconds=6, anomaly_from_s=None), tmp_path / "clip.avi")
    state = tmp_path / "state"
    with Store(state) as store:
        enroll_sample_people(store, vision_models, "C-1")
    config = tmp_path / "edge.toml"
    config.write_text(f'[camera]\nsource = "file://{clip}"\nloop = true\n'
                      f'[models]\ndir = "{models_dir}"\n[mqtt]\nport = 1\n'
                      f'[storage]\nstate_dir = "{state}"\npartials_every_s = {every_s}\n'
                      '[deployment]\npurpose = "research"\nlegal_basis = "test"\n')
    edge = Path(sys.executable).with_name("edge")
    process = subprocess.Popen([str(edge), "--config", str(config), "run"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def analysed() -> int:
            try:
                return int(read_status(state).get("faces_analysed", 0))
            except (EdgeError, ValueError):
                return 0

        assert wait_until(lambda: analysed() >= 50, 90)
        time.sleep(2.5)  # at least two saves since
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    with Store(state) as store:
        partials = {p.person_id: p.faces for p in store.load_partials()}
        closed = store.hours_kept("astronaut")  # the clock may have crossed an hour
    if every_s == 1:
        assert partials.get("astronaut", 0) >= 20 or closed, partials
    else:
        assert partials == {} and closed == 0


def test_a_failed_camera_exits_non_zero_so_systemd_restarts(
        tmp_path: Path, models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A pipeline whose frames the capture thread cannot take (grey, not BGR) crashes that
    thread: `edge run` must end with exit 1, not 0, or Restart=on-failure never fires."""
    config = write_config(tmp_path, models_dir, 1, lawful=True)
    grey = ("videotestsrc num-buffers=50 ! video/x-raw,format=GRAY8,width=320,height=240 "
            "! appsink name=sink")
    plain = config.read_text()
    config.write_text(plain.replace("[camera]\n", f"[camera]\npipeline = '{grey}'\n"))
    assert main(["--config", str(config), "run", "--max-frames", "5"]) == 1
    # positive control: the same run on a BGR test pattern ends normally
    config.write_text(plain)
    assert main(["--config", str(config), "run", "--max-frames", "5"]) == 0


def test_a_full_disk_mid_run_loses_no_hour(tmp_path: Path, models_dir: Path,
                                           vision_models: VisionModels, restore_signals: None,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The disk under the state store fills at hour 8 and is freed at hour 16: no
    traceback, the condition is logged once when it starts and once when it ends, and every
    hour that closed meanwhile is stored once space is back."""
    from disk_support import small_disk

    from edge.core.logs import configure_logging

    with small_disk(tmp_path / "disk", size_kb=2048) as disk:
        _state, settings = clip_run(tmp_path, models_dir, vision_models, 1)
        state = disk.path / "state"
        with Store(state) as store:
            enroll_sample_people(store, vision_models, "C-1")
        settings = settings.model_copy(update={
            "storage": settings.storage.model_copy(update={"state_dir": state})})

        def fill_then_free(service: Service) -> None:
            if service.stats.frames == 96:  # 8 replayed hours
                disk.fill()
            elif service.stats.frames == 192:
                disk.free()

        configure_logging("full-disk-test", json=True)
        capsys.readouterr()
        service = Service(settings, on_progress=fill_then_free)
        assert service.run() == 0
        events = [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()
                  if line.startswith("{")]
        assert events.count("storage_failed") == 1 and events.count("storage_recovered") == 1
        with Store(state) as store:
            assert store.hours_kept("astronaut") >= 24  # as many as without the fault
            hours = store.history("astronaut")[0]
            assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(hours))
        assert read_status(state)["state"] == "stopped"


def test_a_clip_deleted_mid_run_ends_the_run_with_an_error(
        tmp_path: Path, models_dir: Path, vision_models: VisionModels,
        restore_signals: None) -> None:
    """A looping clip that is deleted: the run used to retry it for ever, saying nothing.
    Now it stops with exit 1 (systemd restarts it) and says why."""
    _state, settings = clip_run(tmp_path, models_dir, vision_models, 1)
    clip = write_clip(demo_plan(seconds=1, anomaly_from_s=None), tmp_path / "short.avi")
    settings = settings.model_copy(update={"camera": settings.camera.model_copy(
        update={"source": f"file://{clip}", "loop": True, "replay_speed": None})})

    def delete_after_a_few(service: Service) -> None:
        if service.stats.frames == 5:
            clip.unlink()

    service = Service(settings, on_progress=delete_after_a_few)
    assert service.run() == 1
    assert service.capture_failure is not None and "camera file" in service.capture_failure


def test_an_unreachable_broker_is_said_once(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from edge.core.logs import configure_logging
    from edge.demos.broker import free_port
    from edge.publish.client import Publisher

    configure_logging("broker-test", json=True)
    port = free_port()
    state = tmp_path / "state"
    Store(state).close()
    settings = Settings.model_validate({"mqtt": {"port": port}, "storage": {"state_dir": state}})
    capsys.readouterr()
    publisher = Publisher(settings, state).start()
    try:
        time.sleep(4.5)  # paho retries after 1, 2 s ...: several failed attempts
        events = [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()
                  if line.startswith("{")]
        assert events.count("mqtt_unreachable") == 1 and publisher.unreachable
    finally:
        publisher.stop()


def test_the_clock_check() -> None:
    from edge.service.clockcheck import ClockCheck

    stored = datetime(2026, 11, 25, 9, tzinfo=timezone.utc)
    check = ClockCheck(stored)
    assert "not been set" in (check.problem(datetime(1970, 1, 1, tzinfo=timezone.utc)) or "")
    assert "set back" in (check.problem(stored) or "")  # inside the stored hour
    assert check.problem(stored + timedelta(minutes=59, seconds=30)) is None  # NTP's slack
    assert check.problem(stored + timedelta(hours=2)) is None
    check.saw_hours([stored + timedelta(hours=3)])
    assert "set back" in (check.problem(stored + timedelta(hours=2)) or "")
    assert ClockCheck(None).problem(stored) is None


def test_a_clock_from_1970_dates_no_hour(tmp_path: Path, models_dir: Path,
                                         vision_models: VisionModels, restore_signals: None,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A box without a battery-backed clock boots in 1970; NTP sets the clock mid-run.
    Nothing is dated 1970, it is said once each way, and hours are kept after the jump."""
    from edge.core.clock import SimulatedClock
    from edge.core.logs import configure_logging

    state, settings = clip_run(tmp_path, models_dir, vision_models, 1)
    ntp = datetime(2026, 11, 25, 6, tzinfo=timezone.utc)
    clock = SimulatedClock(datetime(1970, 1, 1, tzinfo=timezone.utc))

    def ntp_sets_the_clock(service: Service) -> None:
        if service.stats.frames == 150:
            clock.set(ntp)
            service.replay_start = ntp - timedelta(seconds=150 * 7200 / 24)

    configure_logging("clock-test", json=True)
    capsys.readouterr()
    service = Service(settings, clock=clock, on_progress=ntp_sets_the_clock)
    assert service.run() == 0
    events = [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()
              if line.startswith("{")]
    assert events.count("clock_untrusted") == 1 and events.count("clock_trusted") == 1
    with Store(state) as store:
        hours = store.history("astronaut")[0]
        assert len(hours) >= 10 and min(hours) >= ntp  # positive control: hours are kept
        assert all(g.hour_start >= ntp for g in store.grades())


def test_a_start_on_a_full_disk_waits_for_space(tmp_path: Path, models_dir: Path,
                                                vision_models: VisionModels) -> None:
    """systemd gives up after five failed starts in ten minutes: a box whose disk is full
    at boot would stay down until a person came. It waits for space instead."""
    from disk_support import small_disk

    with small_disk(tmp_path / "disk", size_kb=1024) as disk:
        _state, settings = clip_run(tmp_path, models_dir, vision_models, 1)
        state = disk.path / "state"
        Store(state).close()
        settings = settings.model_copy(update={
            "storage": settings.storage.model_copy(update={"state_dir": state})})
        disk.fill()
        service = Service(settings)
        started = threading.Event()
        failure: list[BaseException] = []

        def start_and_stop() -> None:  # one thread, as the service's main thread does
            try:
                service.start()
                started.set()
            except BaseException as exc:
                failure.append(exc)
            finally:
                service.stop()

        starter = threading.Thread(target=start_and_stop, daemon=True)
        starter.start()
        assert not started.wait(3) and not failure  # waiting, not failing
        disk.free()
        assert started.wait(20), failure
        starter.join(10)


def test_status_keeps_reporting_while_the_camera_is_gone(tmp_path: Path,
                                                         models_dir: Path) -> None:
    """No frame ever comes (a camera that is not there): status.json used to be written only
    on frames, so it never appeared (or froze). It says the service runs, degraded, and why."""
    config = write_config(tmp_path, models_dir, 1, lawful=True)
    config.write_text(config.read_text().replace(
        'source = "test://ball"', 'source = "v4l2:///dev/video97"\nstall_s = 0.5'))
    edge = Path(sys.executable).with_name("edge")
    process = subprocess.Popen([str(edge), "--config", str(config), "run"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    state = tmp_path / "state"
    try:
        assert wait_until(lambda: (state / "status.json").exists(), 60)
        assert wait_until(lambda: read_status(state).get("camera_problem") is not None, 20)
        status = read_status(state)
        assert status["state"].startswith("degraded: no frames from the camera")
        assert status["frames"] == 0
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert err.count('"event": "camera_lost"') == 1  # said once, not at every retry
    finally:
        if process.poll() is None:
            process.kill()

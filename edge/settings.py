"""Settings: one TOML file plus ``EDGE_*`` environment overrides, validated by pydantic.

Sections mirror the stages of the appliance. Environment variables use ``__`` between
levels (``EDGE_MODELS__BACKEND=onnxruntime``) and win over the file, so a systemd drop-in
or a container can change one value without editing the file.

A wrong value is reported as one line per problem that names the key, where the value came
from (file or environment variable) and what is allowed; see :func:`load_settings`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from edge.core.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - JetPack 6 ships Python 3.10
    import tomli as tomllib  # pyright: ignore[reportMissingImports]  (a 3.10-only dependency)

ENV_PREFIX = "EDGE_"
ENV_DELIMITER = "__"
CONFIG_ENV = "EDGE_CONFIG"
# The folder holding edge/, engines/ and config/: a checkout, or /opt/edge on an installed
# box. Defaults are found through it, so a command works from any folder.
APP_ROOT = Path(__file__).resolve().parents[1]
INSTALLED_STATE_DIR = Path("/var/lib/edge")  # tools/install.sh makes it
INSTALLED_CENTRAL_DIR = Path("/var/lib/edge-central")  # the collector's unit makes it
DEFAULT_CONFIG_PATHS = (Path("/etc/edge/edge.toml"), APP_ROOT / "config" / "edge.toml")


class Section(BaseModel):
    """A settings section: unknown keys are errors, so a typo never goes unnoticed; every
    number is finite (no inf, no nan) and has a range, so what `edge config check`
    accepts, `edge run` can run."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DeviceSettings(Section):
    id: str = Field(default="edge-dev", pattern=r"^[A-Za-z0-9_-]{1,64}$",
                    description="device id: letters, digits, '-' and '_' (used in MQTT topics)")
    site: str = Field(default="default", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    timezone: str = Field(default="UTC",
                          description="IANA zone for clock hours, e.g. Europe/Berlin")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as "
                             "'UTC' or 'Europe/Berlin'") from exc
        return value


class CameraSettings(Section):
    source: str = Field(default="test://", description="csi://0, v4l2:///dev/video0, rtsp://..., "
                        "file:///path.mp4 or test://")
    pipeline: str | None = Field(default=None,
                                 description="full GStreamer pipeline, overrides source")
    sample_every: int = Field(default=1, ge=1, le=120, description="process every n-th frame")
    width: int = Field(default=640, ge=64, le=7680)
    height: int = Field(default=480, ge=64, le=4320)
    fps: int = Field(default=24, ge=1, le=240)
    loop: bool = Field(default=False, description="start a file source again at its end")
    stall_s: float = Field(default=5.0, ge=0.5, le=600.0,
                           description="no frame for this long: rebuild the camera")
    replay_speed: float | None = Field(
        default=None, gt=0, le=1e6, description="a file stands for this many times its "
        "length: each frame moves the clock by replay_speed / fps seconds (demos, replays). "
        "Unset: real time")
    replay_start: AwareDatetime | None = Field(
        default=None, description="with replay_speed: the moment the replay clock starts at "
        "(default: now), so that a replay restarted after a crash continues where it was")


class ModelsSettings(Section):
    dir: Path = Field(default=APP_ROOT / "engines",
                      description="folder holding manifest.json and models")
    backend: Literal["onnxruntime", "tensorrt"] = "onnxruntime"
    fallback_to_onnxruntime: bool = Field(
        default=True, description="tensorrt: run the ONNX model on ONNX Runtime when an engine is "
        "missing or was built for another TensorRT/GPU (logged); false: refuse to start")
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto",
        description="auto: CUDA when onnxruntime-gpu and a GPU are present, else CPU")
    threads: int = Field(default=0,
                         ge=0, le=256, description="intra-op threads, 0 = library default")
    detector: str = "retinaface-mnet025"
    expression: str = "fer-mini-xception"
    landmarks: Literal["68", "5"] = Field(
        default="68", description="dlib landmark model; '5' avoids the 68-point model's "
        "non-commercial iBUG 300-W training data")
    descriptor: str = "dlib-resnet-v1-onnx"


    @field_validator("dir")
    @classmethod
    def _absolute_dir(cls, value: Path) -> Path:
        return from_app_root(value)


class DetectionSettings(Section):
    input_width: int = Field(default=640, ge=32, le=4096, multiple_of=32)
    input_height: int = Field(default=480, ge=32, le=4096, multiple_of=32)
    score_threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    nms_iou: float = Field(default=0.4, gt=0.0, le=1.0)
    min_face_px: int = Field(default=20,
                             ge=1, description="ignore faces smaller than this (box side)")
    interval: int = Field(
        default=4, ge=1, le=24, description="run the detector on the whole frame every N "
        "frames while the scene is settled (every face seen, identified, not covered); in "
        "between the tracks' motion carries the faces and the detector looks only around "
        "the faces being analysed. 1: the whole frame every frame (README: on one core)")


class IdentitySettings(Section):
    threshold: float = Field(default=0.95, ge=-1.0, le=1.0,
                             description="cosine similarity needed to accept a match")
    keep_threshold: float = Field(
        default=0.92,
            ge=-1.0, le=1.0, description="a track already identified keeps its person while "
        "the similarity to that person stays at or above this (hysteresis)")
    recheck_seconds: float = Field(default=3.0, ge=0.1, le=3600.0)
    confirmations: int = Field(default=1, ge=1, le=10, description="descriptors from "
                               "different frames that must agree before a face counts as "
                               "that person; 2 cost 3 points of recall on the attribution "
                               "benchmark and prevented no error there (README)")
    worker_process: bool = Field(
        default=False,
        description="compute descriptors in a second process, so the frame loop never waits "
        "for one (about 4 ms a face); the default, inline, identifies a new face in the "
        "frame it is first seen (README: attribution)")


class EmotionSettings(Section):
    crop_margin: float = Field(default=0.1, ge=0.0, le=1.0,
                               description="margin around the face box, fraction of its side")


class AnalyticsSettings(Section):
    ring_weeks: int = Field(default=1, ge=1, le=52, description="hourly history kept per person")
    min_faces_per_hour: int = Field(default=5, ge=1, le=1_000_000)
    lof_k: int = Field(default=20, ge=2, le=1000)
    lof_threshold: float = Field(default=1.5, gt=0.0, le=1000.0)
    min_history_hours: int = Field(default=24, ge=2, le=52 * 168)
    require_lof_anomaly: bool = True
    sigma_floor: float = Field(default=0.01, ge=0.0, le=1.0,
                               description="smallest standard deviation used by 3-sigma")
    level_cuts: tuple[int, int, int] = Field(
        default=(1, 3, 5), description="lowest level of Low, Medium and High risk")

    @field_validator("level_cuts")
    @classmethod
    def _increasing(cls, value: tuple[int, int, int]) -> tuple[int, int, int]:
        if not 0 < value[0] < value[1] < value[2] <= 10:
            raise ValueError("must be three increasing levels between 1 and 10, e.g. [1, 3, 5]")
        return value


def readable_file(value: Path | None) -> Path | None:
    """A file named in the settings (relative: in the app folder) that this user can read."""
    if value is None:
        return None
    value = from_app_root(value)
    try:
        with value.open("rb"):
            pass
    except FileNotFoundError:
        raise ValueError(f"file {str(value)!r} not found") from None
    except PermissionError:
        raise ValueError(f"file {str(value)!r} cannot be read by this user (permission "
                         "denied): the service user needs read access to it and to "
                         "its folders, e.g. mode 0640 root:edge in a 0750 folder") from None
    except IsADirectoryError:
        raise ValueError(f"{str(value)!r} is a folder, not a file") from None
    return value


def client_certificate_pairs(section: Any) -> Any:
    """A client certificate and its key go together, and need TLS (a CA)."""
    if (section.cert_file is None) != (section.key_file is None):
        raise ValueError("cert_file and key_file go together: set both or neither")
    if section.cert_file is not None and section.ca_file is None:
        raise ValueError("a client certificate needs TLS: set ca_file too")
    return section


class MqttSettings(Section):
    host: str = Field(default="127.0.0.1", min_length=1, max_length=253,
                      pattern=r"^[A-Za-z0-9]([A-Za-z0-9.:_-]*[A-Za-z0-9])?$",
                      description="broker host name or address")
    port: int = Field(default=1883, ge=1, le=65535)
    protocol: Literal["5", "3.1.1"] = Field(
        default="5",
            description="MQTT 5 tells a refused publish (e.g. by ACL) from a delivered one; "
        "3.1.1 cannot")
    topic_prefix: str = Field(default="edge", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$",
                              max_length=64)
    client_id: str | None = Field(default=None, description="default: edge-<device id>")
    keepalive: int = Field(default=30, ge=5, le=3600)
    ca_file: Path | None = Field(default=None, description="CA bundle; setting it turns TLS on")
    cert_file: Path | None = Field(default=None, description="client certificate (PEM)")
    key_file: Path | None = Field(default=None, description="client key (PEM)")
    username: str | None = None
    password: SecretStr | None = Field(
        default=None, description="prefer EDGE_MQTT__PASSWORD or the systemd credential "
        "'mqtt-password' to writing it here")
    pseudonym_rotation: Literal["never", "daily", "weekly", "monthly"] = Field(
        default="weekly", description="how often the person ids on the wire change")
    min_level: int = Field(default=1,
                           ge=0, le=10, description="publish grades at or above this level; "
                           "0 also publishes every 'No risk' hour")
    outbox_max_messages: int = Field(default=10_000, ge=10, le=10_000_000)
    outbox_max_age_hours: int | None = Field(
        default=None, ge=1, le=100_000, description="no longer used: alerts are never dropped "
        "by age, because a wall clock that jumps forward would drop every unsent one; "
        "outbox_max_messages bounds the outbox")
    refused_retry_s: float = Field(default=300.0, ge=1.0, le=86_400.0,
                                   description="resend a refused alert after")
    stats_interval_s: float = Field(default=60.0, ge=1.0, le=86_400.0)

    _readable = field_validator("ca_file", "cert_file", "key_file")(readable_file)
    _pairs = model_validator(mode="after")(client_certificate_pairs)


def from_app_root(path: Path) -> Path:
    """A relative path in the settings means one in the application folder (the checkout,
    or /opt/edge), never one in whatever folder a command happens to run from."""
    return path if path.is_absolute() else APP_ROOT / path


def _default_dir(installed: Path, beside_us: str) -> Path:
    """systemd's StateDirectory= exports STATE_DIRECTORY; on an installed machine outside the
    unit (the technician's `edge status`) the installer's folder; else beside the code."""
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"])
    if installed.is_dir():
        return installed
    return APP_ROOT / beside_us


class StorageSettings(Section):
    state_dir: Path = Field(default_factory=lambda: _default_dir(INSTALLED_STATE_DIR, "state"))

    @field_validator("state_dir", mode="before")
    @classmethod
    def _named(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():  # "" would mean the working folder
            raise ValueError("must name a folder (default: /var/lib/edge when installed)")
        return value

    @field_validator("state_dir")
    @classmethod
    def _absolute_state_dir(cls, value: Path) -> Path:
        return from_app_root(value)
    partials_every_s: float = Field(
        default=60.0, ge=1.0, le=3600.0, description="save every person's open hour this "
        "often, so a crash or a power cut loses at most this much of it")


class CentralSettings(Section):
    """The central collector and its web console (`edge central run`), at the broker's side.

    Secrets never live here: the broker password comes from EDGE_CENTRAL__PASSWORD or the
    systemd credential `central-mqtt-password`, the database URL from EDGE_CENTRAL__DATABASE
    or `central-database-url`, the console's session key from `central-session-key` (else
    one is made once in state_dir)."""

    host: str = Field(default="127.0.0.1", min_length=1, max_length=253,
                      pattern=r"^[A-Za-z0-9]([A-Za-z0-9.:_-]*[A-Za-z0-9])?$",
                      description="the broker the devices publish to")
    port: int = Field(default=1883, ge=1, le=65535)
    topic_prefix: str = Field(default="edge", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$",
                              max_length=64)
    client_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$",
                                  description="default: edge-central-<host name>; each "
                                  "replica needs its own, the same across its restarts")
    share_group: str = Field(default="edge-central", pattern=r"^[A-Za-z0-9_-]{1,64}$",
                             description="replicas in one group split the alerts")
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=60, le=4_294_967_295,
                                  description="how long the broker keeps alerts for a "
                                  "collector that is down")
    keepalive: int = Field(default=30, ge=5, le=3600)
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = Field(default=None, description="CA bundle; setting it turns TLS on")
    cert_file: Path | None = None
    key_file: Path | None = None
    database: SecretStr | None = Field(
        default=None, description="postgresql://user@host/db for a fleet; default: SQLite "
        "central.db in state_dir")
    state_dir: Path = Field(default_factory=lambda: _default_dir(INSTALLED_CENTRAL_DIR,
                                                                 "state-central"))
    listen_host: str = Field(default="127.0.0.1", min_length=1, max_length=253)
    listen_port: int = Field(default=8080, ge=0, le=65535, description="the console; 0: none")
    https_cert_file: Path | None = Field(default=None, description="serve the console over "
                                         "HTTPS with this certificate (PEM)")
    https_key_file: Path | None = None
    secure_cookies: bool = Field(default=True, description="session cookies only over HTTPS "
                                 "(browsers treat http://localhost as secure)")
    stale_after_s: float = Field(default=180.0, ge=5.0, le=86_400.0,
                                 description="a device whose stats stop this long is stale")
    max_message_bytes: int = Field(default=4096, ge=256, le=1_048_576,
                                   description="larger messages are rejected, not parsed")
    session_hours: float = Field(default=8.0, gt=0.0, le=720.0,
                                 description="a console log-in lasts this long")

    _readable = field_validator("ca_file", "cert_file", "key_file", "https_cert_file",
                                "https_key_file")(readable_file)
    _pairs = model_validator(mode="after")(client_certificate_pairs)

    @field_validator("state_dir")
    @classmethod
    def _absolute_central_dir(cls, value: Path) -> Path:
        return from_app_root(value)

    @model_validator(mode="after")
    def _https_pair(self) -> CentralSettings:
        if (self.https_cert_file is None) != (self.https_key_file is None):
            raise ValueError("https_cert_file and https_key_file go together")
        return self


class DeploymentSettings(Section):
    purpose: Literal["medical", "safety", "research"] | None = Field(
        default=None, description="why emotions are inferred here; see README 'Lawful use'")
    legal_basis: str = Field(default="", max_length=500)

    @field_validator("legal_basis")
    @classmethod
    def _declared_or_empty(cls, value: str) -> str:
        if value and not value.strip():
            raise ValueError("only white space: name the legal basis, or leave it out")
        if not value.isprintable():
            raise ValueError("must be printable text, without control characters")
        return value.strip()


class Settings(BaseSettings):
    """All settings of one device."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_DELIMITER, extra="forbid", frozen=True
    )

    device: DeviceSettings = DeviceSettings()
    camera: CameraSettings = CameraSettings()
    models: ModelsSettings = ModelsSettings()
    detection: DetectionSettings = DetectionSettings()
    identity: IdentitySettings = IdentitySettings()
    emotion: EmotionSettings = EmotionSettings()
    analytics: AnalyticsSettings = AnalyticsSettings()
    mqtt: MqttSettings = MqttSettings()
    storage: StorageSettings = StorageSettings()
    deployment: DeploymentSettings = DeploymentSettings()
    central: CentralSettings = CentralSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init kwargs; the environment must win over it.
        return env_settings, init_settings


def default_config_path() -> Path | None:
    """$EDGE_CONFIG, else the first of /etc/edge/edge.toml and the application's own
    config/edge.toml. A file this user may not even look at counts as there, so that
    reading it gives the clear permission error instead of silently using defaults."""
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    return next((p for p in DEFAULT_CONFIG_PATHS if _present(p)), None)


def _present(path: Path) -> bool:
    try:
        return path.is_file()
    except PermissionError:  # a folder the user cannot search (e.g. /etc/edge, 0750)
        return True


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found",
                          "pass an existing file, or copy config/edge.toml") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a TOML file") from None
    except PermissionError:
        raise ConfigError(f"{path}: cannot be read by this user (permission denied)",
                          "run as the service user or root, or make it readable: "
                          "tools/install.sh installs it 0640 root:edge") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _allowed_keys(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def describe_validation_error(exc: ValidationError, path: Path | None) -> str:
    """One line per problem: key, where the value came from, what is allowed."""
    lines = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        key = ".".join(str(p) for p in loc)
        env_name = ENV_PREFIX + ENV_DELIMITER.join(str(p) for p in loc).upper()
        if env_name in os.environ:
            origin = f"environment variable {env_name}"
        elif path is not None:
            origin = str(path)
        else:
            origin = "defaults"
        if error["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(Settings, loc))
            lines.append(f"{origin}: {key}: unknown key; allowed here: {allowed}")
            continue
        message = str(error["msg"]).removeprefix("Value error, ")
        value = error.get("input")
        secret = any(word in str(part) for part in loc
                     for word in ("password", "secret", "database"))
        shown = f" = {value!r}" if not isinstance(value, dict) and not secret else ""
        lines.append(f"{origin}: {key}{shown}: {message}")
    return "\n".join(lines)


def load_settings(path: Path | str | None = None, *, use_default_path: bool = True) -> Settings:
    """Load and validate settings; raise :class:`ConfigError` with readable lines."""
    config_path = Path(path) if path is not None else None
    if config_path is None and use_default_path:
        config_path = default_config_path()
    data = read_toml(config_path) if config_path is not None else {}
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, config_path)) from None

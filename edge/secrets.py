"""Secrets: from systemd credentials, the environment, or a 0600 file in the state folder.

systemd's ``LoadCredential=`` puts files in ``$CREDENTIALS_DIRECTORY``; that comes first.
Secrets are never logged and never stored in the settings file.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from edge.core.errors import ConfigError


def credential(name: str, env: str | None = None) -> str | None:
    """A secret by credential name (systemd) or environment variable; None when absent."""
    folder = os.environ.get("CREDENTIALS_DIRECTORY")
    if folder and (Path(folder) / name).is_file():
        value = (Path(folder) / name).read_text().strip()
        if value:  # an empty credential file means "not used"
            return value
    if env and os.environ.get(env):
        return os.environ[env]
    return None


def kept_secret(state_dir: Path, name: str, env: str) -> bytes:
    """A key by credential ``name`` or environment ``env``; else one made once (64 random
    hex characters) and kept, 0600, as ``<name>.secret`` in ``state_dir``. Two processes
    making it at the same moment end up with the same one."""
    given = credential(name, env)
    if given is not None:
        if len(given) < 32:
            raise ConfigError(f"the {name} credential is too short ({len(given)} characters)",
                              "use at least 32 random characters, e.g. `openssl rand -hex 32`")
        return given.encode()
    path = state_dir / f"{name}.secret"
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it meanwhile
            return path.read_text().strip().encode()
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def device_key(state_dir: Path, name: str = "pseudonym-key") -> bytes:
    """The device's pseudonym key: the credential if provided, else made once and kept."""
    return kept_secret(state_dir, name, "EDGE_PSEUDONYM_KEY")

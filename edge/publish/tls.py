"""TLS for a paho client: the one place a device or a central tool sets it up.

The broker's certificate must chain to ``ca_file`` and name the host (no insecure mode);
a client certificate and key are sent when given (per-device ACLs). A file that is not PEM,
or cannot be read, is one ``ConfigError`` line naming the setting, never a traceback.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import paho.mqtt.client as mqtt

from edge.core.errors import ConfigError


def use_tls(client: mqtt.Client, ca_file: Path | str, cert_file: Path | str | None = None,
            key_file: Path | str | None = None, *, names: str = "mqtt.ca_file, cert_file and "
            "key_file") -> None:
    """Require TLS with ``ca_file``; ``names``: how the user set these files (for the error)."""
    try:
        client.tls_set(ca_certs=str(ca_file), certfile=str(cert_file) if cert_file else None,
                       keyfile=str(key_file) if key_file else None,
                       cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"cannot use the TLS files ({exc})",
                          f"check that {names} are readable PEM files") from None
    client.tls_insecure_set(False)  # the broker's name must match its certificate

"""A paho client as every part of edge makes one: the device's publisher, the central
collector and the `edge alerts` view.

paho 2.x with callback API version 2; exceptions in callbacks suppressed (one would kill
paho's loop thread while ``is_connected()`` still says True); reconnects backed off; TLS
through :func:`edge.publish.tls.use_tls` (the broker's name always checked); a user name
and password when given.
"""

from __future__ import annotations

from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge.publish.tls import use_tls


def new_client(client_id: str = "", *, protocol: MQTTProtocolVersion = mqtt.MQTTv5,
               ca_file: Path | str | None = None, cert_file: Path | str | None = None,
               key_file: Path | str | None = None, tls_names: str = "mqtt.ca_file, cert_file "
               "and key_file", username: str | None = None, password: str | None = None,
               manual_ack: bool = False, max_backoff_s: int = 60) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                         manual_ack=manual_ack)
    client.suppress_exceptions = True
    client.reconnect_delay_set(1, max_backoff_s)
    if ca_file:
        use_tls(client, ca_file, cert_file, key_file, names=tls_names)
    if username or password:
        client.username_pw_set(username, password)
    return client

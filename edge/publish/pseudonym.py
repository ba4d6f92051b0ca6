"""Pseudonymous ids for the wire: a keyed hash (HMAC-SHA256) of the local person id.

The central side can follow one person's alerts over time without learning who it is;
without the device key, the id cannot be reversed or matched across devices.
"""

from __future__ import annotations

import hashlib
import hmac

PSEUDONYM_HEX = 16  # 64 bits: collisions negligible for any team a box can see


def pseudonym(person_id: str, key: bytes) -> str:
    return hmac.new(key, person_id.encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]

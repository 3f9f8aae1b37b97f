"""Time-ordered UUIDs (RFC 9562 version 7) made on the client.

Generating ids before the first write attempt is what makes retries idempotent: the retry
carries the same primary key. Time ordering keeps B-tree inserts near the right edge of
the index, as a serial key would.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0

# Namespace for deterministic ids (uuid5) of imported records.
IMPORT_NAMESPACE = uuid.UUID("6f1c2a8e-3b7d-4c59-9a1e-5d2f8b0c7e41")


def uuid7() -> uuid.UUID:
    """A new version-7 UUID; monotonic within this process."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:
                ms += 1
                _counter = 0
        else:
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF
        _last_ms = ms
        counter = _counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand
    return uuid.UUID(int=value)


def stable_id(*parts: object) -> uuid.UUID:
    """A deterministic UUID for an imported item, so that re-importing stores nothing twice."""
    return uuid.uuid5(IMPORT_NAMESPACE, "\x1f".join(str(p) for p in parts))

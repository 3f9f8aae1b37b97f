"""A short-lived cache for the project page's aggregates (stale while revalidating).

``usage_daily`` and the project's counts aggregate every generation of the window: at
100,000 generations that is a scan of the whole (wide) ``generations`` heap, about a
second here, where every other page reads a few rows by index. The page is a dashboard,
so it shows aggregates at most ``TTL_SECONDS`` old: a stale entry is served while one
background thread recomputes it, and only the first request for a key waits. Entries are
per project *and principal* (and role and window), each computed under that principal's
row-level security, so one principal never sees what was computed for another.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

TTL_SECONDS = 60.0
MAX_ENTRIES = 1000


class StaleWhileRevalidate:
    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self.ttl = ttl
        self.lock = threading.Lock()
        self.entries: dict[Hashable, tuple[float, Any]] = {}
        self.refreshing: set[Hashable] = set()

    def get(self, key: Hashable, compute: Callable[[], Any]) -> tuple[Any, float]:
        """``(value, computed at: time.time())``."""
        with self.lock:
            found = self.entries.get(key)
            stale = found is not None and time.time() - found[0] > self.ttl
            if stale and key not in self.refreshing:
                self.refreshing.add(key)
                threading.Thread(target=self._refresh, args=(key, compute), daemon=True).start()
        if found is not None:
            return found[1], found[0]
        value = compute()
        at = time.time()
        self._store(key, at, value)
        return value, at

    def _store(self, key: Hashable, at: float, value: Any) -> None:
        with self.lock:
            if len(self.entries) >= MAX_ENTRIES and key not in self.entries:
                self.entries.pop(min(self.entries, key=lambda k: self.entries[k][0]))
            self.entries[key] = (at, value)

    def _refresh(self, key: Hashable, compute: Callable[[], Any]) -> None:
        try:
            value = compute()
            self._store(key, time.time(), value)
        except Exception:  # the stale value stays; the next request retries
            pass
        finally:
            with self.lock:
                self.refreshing.discard(key)

"""Validation and normalisation of one generation before it is written.

Every write path (``Session.log``, ``Project.log``, the bulk writer, the importers) builds
its rows here, so every path rejects the same bad input with the same message: the field,
and the reason. PostgreSQL itself refuses NUL bytes and lone surrogates in text and NaN in
``jsonb``, but accepts NaN and infinities in float columns; checking here catches all of
them before a batch is sent, so one bad item never costs the others.

Limits, each reported as a :class:`ValidationError` naming the field: JSON values nest at
most :data:`MAX_JSON_DEPTH` (100) levels, with integers of at most
:data:`JSON_INT_DIGITS` (1000) digits, string keys and finite numbers; counts (tokens,
``seq``) fit PostgreSQL's ``integer``; times fall within the years 1 to 9999 in UTC.
Nothing a caller passes makes validation raise anything else (error messages show values
through :func:`_brief`, which cannot fail).
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import math
import reprlib
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..db.models import GENERATION_STATUSES, ORIGINS
from ..errors import Problem, ValidationError
from ..ids import uuid7

HASH_VERSION = 1
AMOUNT_LIMIT = 10**10  # cost_usd is numeric(18, 8); latency shares the limit (115 days)
MAX_JSON_DEPTH = 100
"""How deeply JSON values (metadata, params, lineage, messages) may nest: objects and
arrays inside one another, counted from the value itself (``{"a": {"b": 1}}`` is 2 deep).
Deeper values are rejected, whatever their size: they are never real data, and every
reader (Python's json, PII scanning, the database's parser) walks them recursively."""
JSON_INT_DIGITS = 1000
"""Integers in JSON values may have at most this many digits (jsonb's numeric holds them
exactly; Python refuses to convert ints past 4300 digits to text)."""
_JSON_INT_LIMIT = 10**JSON_INT_DIGITS
INT4_MAX = 2_147_483_647
EPOCH_MIN = -62_135_596_800  # 0001-01-01T00:00:00Z in epoch seconds
EPOCH_LIMIT = 253_402_300_800  # 10000-01-01T00:00:00Z


def _brief(value: Any, limit: int = 60) -> str:
    """A short ``repr`` of any value, safe for error messages: nested containers, huge
    numbers and objects whose ``repr`` fails cannot raise here."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of {value.bit_length()} bits"
    try:
        text = _REPR.repr(value)
    except Exception:  # a broken __repr__ of a caller's object
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _make_repr() -> reprlib.Repr:
    r = reprlib.Repr()
    r.maxlevel, r.maxstring, r.maxother, r.maxlong = 3, 50, 50, 40
    return r


_REPR = _make_repr()


class _Collector:
    """Gathers the problems of one record so that all of them are reported at once."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.problems: list[Problem] = []

    def add(self, field_name: str, reason: str) -> None:
        self.problems.append(Problem(field_name, reason))

    def text(self, field_name: str, value: Any, *, required: bool = False) -> str | None:
        if value is None:
            if required:
                self.add(field_name, "is required")
            return None
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.add(field_name, f"is not valid UTF-8 (byte {exc.start})")
                return None
        if not isinstance(value, str):
            self.add(field_name, f"must be text, not {type(value).__name__}")
            return None
        if self._text_ok(field_name, value):
            return value
        return None

    def _text_ok(self, field_name: str, value: str) -> bool:
        nul = value.find("\x00")
        if nul >= 0:
            self.add(field_name, f"contains a NUL byte at character {nul}")
            return False
        try:
            # an ASCII string (a flag CPython keeps) is its own UTF-8, with no surrogates
            size = len(value) if value.isascii() else len(value.encode("utf-8"))
        except UnicodeEncodeError as exc:
            self.add(field_name, f"is not valid UTF-8 (lone surrogate at character {exc.start})")
            return False
        if size > self.max_bytes:
            self.add(
                field_name,
                f"is {size} bytes, over the limit of {self.max_bytes} (PROMPTLAKE_MAX_TEXT_BYTES)",
            )
            return False
        return True

    def name(self, field_name: str, value: Any) -> str | None:
        text = self.text(field_name, value)
        if text is not None and not text.strip():
            self.add(field_name, "must not be empty")
            return None
        return text

    def count(self, field_name: str, value: Any) -> int | None:
        """A whole number the database's ``integer`` columns hold (0 to 2**31 - 1)."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                self.add(field_name, f"must be a whole number, got {_brief(value)}")
                return None
        if value < 0:
            self.add(field_name, f"must not be negative, got {_brief(value)}")
            return None
        if value > INT4_MAX:
            self.add(field_name, f"is too large ({_brief(value)}); the limit is {INT4_MAX}")
            return None
        return int(value)

    def amount(self, field_name: str, value: Any) -> float | decimal.Decimal | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
            self.add(field_name, f"must be a number, got {type(value).__name__}")
            return None
        if isinstance(value, decimal.Decimal):
            finite = value.is_finite()
        else:  # an int too large for a float is finite, and merely too large
            finite = isinstance(value, int) or math.isfinite(value)
        if not finite:
            self.add(field_name, f"must be a finite number, got {value}")
            return None
        if value < 0:
            self.add(field_name, f"must not be negative, got {_brief(value)}")
            return None
        if value >= AMOUNT_LIMIT:
            self.add(field_name, f"is too large ({_brief(value)}); the limit is {AMOUNT_LIMIT:.0e}")
            return None
        return value

    def json_value(self, field_name: str, value: Any, *, kind: type | None = dict) -> Any:
        """Check that ``value`` is plain JSON (finite numbers, clean text) and small enough."""
        if value is None:
            return {} if kind is dict else None
        if kind is not None and not isinstance(value, kind):
            self.add(field_name, f"must be a JSON {_kind_name(kind)}, got {type(value).__name__}")
            return None
        bound = _scan(value, 1)
        if bound < 0:  # something is wrong: walk again, slowly, to say what and where
            before = len(self.problems)
            self._walk(field_name, value, "$", 1)
            if len(self.problems) > before:
                return None
            bound = self.max_bytes + 1
        if bound > self.max_bytes:  # serialise only when the limit may be near
            size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
            if size > self.max_bytes:
                self.add(field_name, f"is {size} bytes of JSON, over the limit of {self.max_bytes}")
                return None
        return value

    def _walk(self, field_name: str, value: Any, path: str, depth: int) -> int:
        """Check ``value`` (``depth`` levels down); return an upper bound of its size as
        JSON text, in bytes."""
        if value is None or isinstance(value, bool):
            return 5
        if isinstance(value, int):
            if not -_JSON_INT_LIMIT < value < _JSON_INT_LIMIT:
                self.add(field_name, f"{_path(path)} is an integer of more than"
                         f" {JSON_INT_DIGITS} digits")  # fmt: skip
                return 0
            return len(str(value))
        if isinstance(value, float):
            if not math.isfinite(value):
                self.add(field_name, f"{_path(path)} is {value}, which JSON cannot hold")
            return 25
        if isinstance(value, str):
            self._text_ok(f"{field_name} {_path(path)}", value)
            return 6 * len(value) + 2  # at most a 6-byte escape per character
        if isinstance(value, list | tuple | Mapping) and depth > MAX_JSON_DEPTH:
            self.add(
                field_name,
                f"{_path(path)} is nested deeper than {MAX_JSON_DEPTH} levels (or contains itself)",
            )
            return 0
        if isinstance(value, list | tuple):
            size = 2
            for i, item in enumerate(value):
                size += self._walk(field_name, item, f"{path}[{i}]", depth + 1) + 2
            return size
        if isinstance(value, Mapping):
            size = 2
            for key, item in value.items():
                if not isinstance(key, str):
                    self.add(field_name, f"{_path(path)} has a non-text key {_brief(key)}")
                    continue
                if not self._text_ok(f"{field_name} {_path(path)} key", key):
                    continue
                size += 6 * len(key) + 4 + self._walk(field_name, item, f"{path}.{key}", depth + 1)
            return size
        self.add(field_name, f"{_path(path)} is a {type(value).__name__}, which is not JSON")
        return 0

    def tags(self, field_name: str, value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
            self.add(field_name, "must be a list of strings")
            return []
        out = []
        for i, tag in enumerate(value):
            text = self.name(f"{field_name}[{i}]", tag)
            if text is not None:
                out.append(text)
        return sorted(set(out)) if isinstance(value, set | frozenset) else out

    def timestamp(self, field_name: str, value: Any) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            stamp = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                self.add(field_name, f"must be a finite epoch time, got {value}")
                return None
            try:
                if not EPOCH_MIN <= value < EPOCH_LIMIT:
                    raise OverflowError(value)
                stamp = dt.datetime.fromtimestamp(value, dt.UTC)
            except (OverflowError, ValueError, OSError):
                hint = "; milliseconds? divide by 1000" if 0 < value < EPOCH_LIMIT * 1000 else ""
                self.add(field_name, f"{_brief(value)} (epoch seconds) is out of range: times"
                         f" must fall within the years 1 to 9999{hint}")  # fmt: skip
                return None
        elif isinstance(value, str):
            try:
                stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                self.add(field_name, f"is not an ISO 8601 time: {_brief(value, 50)}")
                return None
        else:
            self.add(
                field_name,
                f"must be a datetime, ISO 8601 text or epoch seconds, not {_brief(value)}",
            )
            return None
        if stamp.tzinfo is None:
            return stamp.replace(tzinfo=dt.UTC)
        try:  # the database stores UTC: an offset must not carry it past year 1 or 9999
            stamp.astimezone(dt.UTC)
        except (OverflowError, ValueError):
            self.add(field_name, f"{stamp.isoformat()} is out of range: in UTC it falls outside"
                     " the years 1 to 9999")  # fmt: skip
            return None
        return stamp

    def choice(self, field_name: str, value: Any, allowed: tuple[str, ...]) -> str | None:
        if not isinstance(value, str) or value not in allowed:
            self.add(field_name, f"must be one of {', '.join(allowed)}; got {_brief(value)}")
            return None
        return value

    def uuid(self, field_name: str, value: Any) -> uuid.UUID | None:
        if value is None:
            return None
        if isinstance(value, uuid.UUID):
            return value
        inner = getattr(value, "id", None)
        if isinstance(inner, uuid.UUID):
            return inner
        if isinstance(value, str):
            try:
                return uuid.UUID(value)
            except ValueError:
                pass
        self.add(field_name, f"must be a UUID or an object with an id, got {_brief(value)}")
        return None


def _decimal(value: float | decimal.Decimal | None) -> decimal.Decimal | None:
    return None if value is None else decimal.Decimal(str(value))


def _clean(text: str) -> bool:
    if "\x00" in text:
        return False
    if text.isascii():  # O(1): no lone surrogate in it, nothing to encode
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _path(path: str) -> str:
    """A JSON path for a message: its ends, when it is long (deep or with long keys)."""
    return path if len(path) <= 80 else f"{path[:40]}...{path[-30:]}"


def _scan(value: Any, depth: int) -> int:
    """Fast check of a JSON value ``depth`` levels down: an upper bound of its size as JSON
    text in bytes, or -1 if anything in it is not clean JSON or nests deeper than
    :data:`MAX_JSON_DEPTH` (then ``_Collector._walk`` says what and where)."""
    kind = type(value)
    if kind is str:
        return 6 * len(value) + 2 if _clean(value) else -1  # at most a 6-byte escape a char
    if value is None or kind is bool:
        return 5
    if kind is int:
        return len(str(value)) if -_JSON_INT_LIMIT < value < _JSON_INT_LIMIT else -1
    if kind is float:
        return 25 if math.isfinite(value) else -1
    if depth > MAX_JSON_DEPTH:
        return -1
    # text leaves (most of them) are checked in the loops, without a call each
    if kind is list or kind is tuple:
        size = 2
        for item in value:
            if type(item) is str:
                if not _clean(item):
                    return -1
                bound = 6 * len(item) + 2
            else:
                bound = _scan(item, depth + 1)
                if bound < 0:
                    return -1
            size += bound + 2
        return size
    if kind is dict:
        size = 2
        for key, item in value.items():
            if type(key) is not str or not _clean(key):
                return -1
            if type(item) is str:
                if not _clean(item):
                    return -1
                bound = 6 * len(item) + 2
            else:
                bound = _scan(item, depth + 1)
                if bound < 0:
                    return -1
            size += 6 * len(key) + 4 + bound
        return size
    return -1


def _kind_name(kind: type) -> str:
    return {dict: "object", list: "array"}.get(kind, kind.__name__)


_ASCII_WHITESPACE = "".join(c for c in map(chr, range(128)) if c.isspace() and c != " ")


def normalize_text(text: str) -> str:
    """The normalisation behind content hashes (version 1): Unicode NFC, whitespace runs
    folded to one space, ends stripped. Case is kept: "No" and "no" differ as answers."""
    if text.isascii():
        # ASCII is its own NFC form. Splitting a text into words and joining them again
        # costs an object per word (about 10 us per KB); the same folding done with a few
        # C-level scans and replaces costs about half. Same result: every ASCII whitespace
        # character becomes a space, runs of spaces shrink to one, the ends are stripped.
        for ch in _ASCII_WHITESPACE:
            if ch in text:
                text = text.replace(ch, " ")
        while "  " in text:
            text = text.replace("  ", " ")
        return text.strip(" ")
    # str.split() splits on exactly the characters \s matches, and drops the ends
    return " ".join(unicodedata.normalize("NFC", text).split())


def _digest(tag: bytes, text: str) -> bytes:
    return hashlib.sha256(b"promptlake/%d/" % HASH_VERSION + tag + b"\x00" + text.encode()).digest()


def input_canonical(text: str | None, messages: list[dict[str, Any]] | None) -> str:
    if messages is None:
        return normalize_text(text or "")
    parts = []
    for message in messages:
        content = message.get("content")
        if not isinstance(content, str):
            content = json.dumps(content, ensure_ascii=False, sort_keys=True)
        parts.append(f"{message.get('role')}: {normalize_text(content)}")
    if text:
        parts.append(f"text: {normalize_text(text)}")
    return "\n".join(parts)


def content_hashes(
    text: str | None, messages: list[dict[str, Any]] | None, output: str | None
) -> tuple[bytes, bytes, bytes]:
    """(input_hash, output_hash, content_hash) of a generation, at :data:`HASH_VERSION`."""
    input_hash = _digest(b"input", input_canonical(text, messages))
    output_hash = _digest(b"output", normalize_text(output or ""))
    return input_hash, output_hash, hashlib.sha256(input_hash + output_hash).digest()


def _messages(c: _Collector, value: Any) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not value:
        c.add("messages", "must be a non-empty list of {role, content} objects")
        return None
    out: list[dict[str, Any]] = []
    for i, message in enumerate(value):
        if not isinstance(message, Mapping):
            reason = f"must be an object with role and content, got {_brief(message)}"
            c.add(f"messages[{i}]", reason)
            continue
        role = message.get("role")
        if not isinstance(role, str) or not role.strip():
            c.add(f"messages[{i}].role", "is required and must be text")
        if "content" not in message:
            c.add(f"messages[{i}].content", "is required (null is allowed for tool calls)")
        out.append(dict(message))
    return c.json_value("messages", out, kind=list)


@dataclass
class GenerationRow:
    """A validated generation, ready to be written; field names match the table's columns."""

    id: uuid.UUID
    session_id: uuid.UUID | None
    parent_id: uuid.UUID | None
    seq: int | None
    prompt_version_id: uuid.UUID | None
    model: str | None
    run_id: uuid.UUID | None
    name: str | None
    input_messages: list[dict[str, Any]] | None
    input_text: str | None
    output: str | None
    params: dict[str, Any]
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: decimal.Decimal | None
    latency_ms: float | None
    status: str
    error: str | None
    origin: str
    generator: str | None
    lineage: dict[str, Any]
    input_hash: bytes
    output_hash: bytes
    content_hash: bytes
    tags: list[str]
    metadata: dict[str, Any]
    created_at: dt.datetime
    attachments: list[dict[str, Any]] = field(default_factory=list)
    pii_policy_version: int | None = None
    pii_findings: list[dict[str, Any]] = field(default_factory=list)
    vault_originals: dict[str, Any] | None = None
    vault_sealed: tuple | None = None  # (key_id, nonce, ciphertext), as journaled


GENERATION_FIELDS = frozenset(
    {
        "id",
        "session",
        "parent",
        "seq",
        "prompt_version",
        "model",
        "run",
        "name",
        "prompt",
        "messages",
        "output",
        "params",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "latency_ms",
        "status",
        "error",
        "origin",
        "generator",
        "lineage",
        "tags",
        "metadata",
        "created_at",
        "attachments",
    }
)


def prepare_generation(
    fields: Mapping[str, Any],
    *,
    max_bytes: int,
    max_attachment_bytes: int = 50 * 1024 * 1024,
    anonymize: Callable[[GenerationRow], None] | None = None,
    finish: bool = True,
) -> GenerationRow:
    """Validate ``fields`` (the keyword arguments of ``log``) into a :class:`GenerationRow`.

    Raises :class:`ValidationError` naming every bad field. With ``finish=False`` the row
    is only validated: :func:`finish_generation` must anonymize and hash it before it is
    written (the bulk writer does that at flush time, while the database works).
    """
    c = _Collector(max_bytes)
    for unknown in sorted(set(fields) - GENERATION_FIELDS):
        c.add(unknown, "is not a field of a generation")
    text = c.text("prompt", fields.get("prompt"))
    messages = _messages(c, fields.get("messages"))
    if fields.get("prompt") is None and fields.get("messages") is None:
        c.add("prompt", "a prompt or messages is required")
    output = c.text("output", fields.get("output"))
    error = c.text("error", fields.get("error"))
    status = fields.get("status") or ("error" if error is not None else "ok")
    c.choice("status", status, GENERATION_STATUSES)
    origin = fields.get("origin") or "real"
    c.choice("origin", origin, ORIGINS)
    generator = c.text("generator", fields.get("generator"))
    if origin == "synthetic" and not (generator and generator.strip()):
        c.add("generator", "synthetic data needs its lineage: name the generator model or pipeline")
    if origin == "real" and generator is not None:
        c.add("generator", "only synthetic rows have a generator; set origin='synthetic'")
    lineage = c.json_value("lineage", fields.get("lineage"))
    row_id = c.uuid("id", fields.get("id")) or uuid7()
    created = c.timestamp("created_at", fields.get("created_at")) or dt.datetime.now(dt.UTC)
    row = GenerationRow(
        id=row_id,
        session_id=c.uuid("session", fields.get("session")),
        parent_id=c.uuid("parent", fields.get("parent")),
        seq=c.count("seq", fields.get("seq")),
        prompt_version_id=c.uuid("prompt_version", fields.get("prompt_version")),
        model=c.name("model", fields.get("model")),
        run_id=c.uuid("run", fields.get("run")),
        name=c.text("name", fields.get("name")),
        input_messages=messages,
        input_text=text,
        output=output,
        params=c.json_value("params", fields.get("params")),
        prompt_tokens=c.count("prompt_tokens", fields.get("prompt_tokens")),
        completion_tokens=c.count("completion_tokens", fields.get("completion_tokens")),
        cost_usd=_decimal(c.amount("cost_usd", fields.get("cost_usd"))),
        latency_ms=c.amount("latency_ms", fields.get("latency_ms")),
        status=status,
        error=error,
        origin=origin,
        generator=generator,
        lineage=lineage,
        input_hash=b"",
        output_hash=b"",
        content_hash=b"",
        tags=c.tags("tags", fields.get("tags")),
        metadata=c.json_value("metadata", fields.get("metadata")),
        created_at=created,
        attachments=_attachments(c, fields.get("attachments"), max_attachment_bytes),
    )
    if row.parent_id is not None and row.parent_id == row.id:
        c.add("parent", "a generation cannot be its own parent")
    if c.problems:
        raise ValidationError(c.problems)
    return finish_generation(row, anonymize) if finish else row


def finish_generation(
    row: GenerationRow, anonymize: Callable[[GenerationRow], None] | None = None
) -> GenerationRow:
    """Apply the PII policy (``anonymize``) to a validated row, then hash its content;
    nothing here can reject it. A row is finished once its ``content_hash`` is set."""
    if anonymize is not None:
        anonymize(row)  # before hashing: hashes are of the text as stored
    row.input_hash, row.output_hash, row.content_hash = content_hashes(
        row.input_text, row.input_messages, row.output
    )
    return row


ATTACHMENT_KINDS = ("image", "audio", "video", "file")


def _attachments(c: _Collector, value: Any, max_bytes: int) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        c.add("attachments", "must be a list")
        return []
    out = []
    for i, item in enumerate(value):
        where = f"attachments[{i}]"
        item = item if isinstance(item, Mapping) else getattr(item, "__dict__", None)
        if not isinstance(item, Mapping):
            c.add(where, "must be an object with kind, mime_type and data or uri")
            continue
        data = item.get("data")
        uri = c.text(f"{where}.uri", item.get("uri"))
        if data is not None and not isinstance(data, bytes | bytearray | memoryview):
            c.add(f"{where}.data", f"must be bytes, got {type(data).__name__}")
            data = None
        if data is not None and len(data) > max_bytes:
            c.add(f"{where}.data", f"is {len(data)} bytes, over the limit of {max_bytes}")
            data = None
        elif data is None and uri is None:
            c.add(where, "needs data (bytes) or a uri")
        kind = c.choice(f"{where}.kind", item.get("kind", "file"), ATTACHMENT_KINDS)
        mime = c.name(f"{where}.mime_type", item.get("mime_type") or "application/octet-stream")
        blob = bytes(data) if data is not None else None
        out.append(
            {
                "id": c.uuid(f"{where}.id", item.get("id")) or uuid7(),
                "kind": kind,
                "mime_type": mime,
                "data": blob,
                "uri": uri,
                "sha256": hashlib.sha256(blob).digest() if blob is not None else None,
                "size_bytes": len(blob)
                if blob is not None
                else c.count(f"{where}.size_bytes", item.get("size_bytes")),
                "role": c.text(f"{where}.role", item.get("role", "input")),
            }
        )
    return out

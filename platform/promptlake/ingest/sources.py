"""Streaming readers behind the importers: records out of a file without reading it whole.

A file is opened in binary and read one line (JSONL, CSV) or one array item (JSON, through
``ijson``) at a time, so its size does not matter and progress can be measured in bytes
(``tell()`` on the binary handle). Each line is decoded on its own with strict UTF-8, so a
bad byte costs that line, not the file. A broken line comes out as a record carrying its
problem, labelled with where it is ("line 12", counted from 1 as editors do; "item 12",
the index in the array, counted from 0 as ``data[12]`` does), for the importer to report.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from ..errors import Problem

BOM = b"\xef\xbb\xbf"

ProgressCallback = Callable[[int, int], None]
"""Called as ``callback(bytes_done, bytes_total)`` while a file is read."""


@dataclass
class Record:
    """One parsed line or array item, or the reason it could not be parsed."""

    label: str
    key: str  # where it is and a hash of its bytes: its identity when it has no id
    value: Any = None
    problem: Problem | None = None


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:20]


def json_records(f: BinaryIO) -> Iterator[Record]:
    """The records of a JSON array (streamed) or of a JSONL file, whichever ``f`` holds."""
    start = f.read(4096)
    skip = len(BOM) if start.startswith(BOM) else 0
    body = start[skip:].lstrip()
    f.seek(skip)
    if body.startswith(b"["):
        return _array_records(f)
    return _jsonl_records(f)


def _jsonl_records(f: BinaryIO) -> Iterator[Record]:
    for number, raw in enumerate(f, 1):
        body = raw.strip()
        if not body:
            continue
        label = f"line {number}"
        key = f"line {number} sha256={digest(body)}"
        text, problem = decode_line(body)
        if problem is None:
            try:
                yield Record(label, key, json.loads(text))
                continue
            except json.JSONDecodeError as exc:
                problem = Problem("json", f"{exc.msg} at column {exc.colno}")
            except (ValueError, RecursionError) as exc:
                problem = unreadable(exc)
        yield Record(label, key, problem=problem)


def unreadable(exc: ValueError | RecursionError) -> Problem:
    """Why a syntactically valid JSON text could not be read: Python's json refuses
    integers of more than 4300 digits and nesting past its recursion limit."""
    if isinstance(exc, RecursionError):
        return Problem("json", "is nested too deeply to read (about 1000 levels or more)")
    return Problem("json", f"cannot be read: {str(exc).splitlines()[0][:120]}")


def _array_records(f: BinaryIO) -> Iterator[Record]:
    """The items of one top-level JSON array, each built from the parser's events (what
    ``ijson.items`` does), so that anything after the array is seen: a JSONL file whose
    first line happens to be an array is reported, not read as one item and dropped."""
    import ijson

    index = -1
    builder: Any = None
    depth = 0
    tops = 0
    try:
        for prefix, event, value in ijson.parse(f, use_float=True, multiple_values=True):
            if builder is None:
                if prefix == "" and event not in ("end_array", "end_map"):
                    tops += 1
                    if tops > 1 or event != "start_array":
                        reason = "data follows the array (a JSONL file?); the rest of the file"
                        reason += " cannot be read"
                        yield Record(f"item {index + 1}", "", problem=Problem("json", reason))
                        return
                    continue
                if prefix != "item":
                    continue
                if event not in ("start_map", "start_array"):  # a scalar item
                    index += 1
                    yield _item(index, value)
                    continue
                builder, depth = ijson.ObjectBuilder(), 0
            builder.event(event, value)
            depth += 1 if event in ("start_map", "start_array") else 0
            depth -= 1 if event in ("end_map", "end_array") else 0
            if depth == 0:
                index += 1
                item, builder = builder.value, None
                yield _item(index, item)
    except (ijson.JSONError, ValueError, RecursionError) as exc:  # the stream cannot go on
        message = exc.args[0] if exc.args else str(exc)
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        reason = f"{str(message).splitlines()[0]}; the rest of the array cannot be read"
        yield Record(f"item {index + 1}", "", problem=Problem("json", reason))


def _item(index: int, value: Any) -> Record:
    label = f"item {index}"
    try:
        canonical = json.dumps(value, sort_keys=True).encode()
    except (ValueError, RecursionError) as exc:
        return Record(label, label, problem=unreadable(exc))
    return Record(label, f"{label} sha256={digest(canonical)}", value)


def decode_line(raw: bytes) -> tuple[str, Problem | None]:
    """``raw`` as text, or the reason it is not UTF-8 text PostgreSQL can hold."""
    nul = raw.find(b"\x00")
    if nul >= 0:
        return "", Problem("encoding", f"contains a NUL byte at byte {nul}")
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return "", Problem("encoding", f"is not valid UTF-8 (byte {exc.start}: {exc.reason})")


class CsvRows:
    """Rows of a CSV file as ``(label, key, cells, problem)``, the header first.

    Lines are decoded one by one; a line that is not UTF-8 is passed on (with replacement
    characters) so the csv parser stays in step, and the row it belongs to is reported.
    """

    def __init__(self, f: BinaryIO, delimiter: str = ",") -> None:
        self._bad: dict[int, Problem] = {}
        self._reader = csv.reader(self._lines(f), delimiter=delimiter)

    def _lines(self, f: BinaryIO) -> Iterator[str]:
        for number, raw in enumerate(f, 1):
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM) :]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self._bad[number] = Problem(
                    "encoding", f"line {number} is not valid UTF-8 (byte {exc.start})"
                )
                yield raw.decode("utf-8", "replace")

    def __iter__(self) -> Iterator[tuple[str, str, list[str], Problem | None]]:
        last = 0
        while True:
            try:
                cells = next(self._reader)
                problem = None
            except StopIteration:
                return
            except csv.Error as exc:
                cells, problem = [], Problem("csv", str(exc))
            first, last = last + 1, self._reader.line_num
            bad = [self._bad.pop(n) for n in range(first, last + 1) if n in self._bad]
            problem = problem or (bad[0] if bad else None)
            if not cells and problem is None:
                continue  # a blank line
            raw = "\x1f".join(cells).encode("utf-8", "surrogatepass")
            yield f"line {first}", f"line {first} sha256={digest(raw)}", cells, problem


class Progress:
    """Bytes read so far, shown as a rich bar (on a terminal) and/or passed to a callback."""

    def __init__(self, show: bool | ProgressCallback | None, total: int, description: str) -> None:
        self.total = total
        self._callback = show if callable(show) else None
        self._last = -1
        self._bar: Any = None
        if show is None:
            show = sys.stderr.isatty()
        if show is True:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = rich_bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            rich_bar.start()
            self._task = rich_bar.add_task(description, total=total)

    def update(self, done: int) -> None:
        if done == self._last:
            return
        self._last = done
        if self._callback is not None:
            self._callback(done, self.total)
        if self._bar is not None:
            self._bar.update(self._task, completed=done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

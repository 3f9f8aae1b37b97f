"""API keys and secrets by vendor: the patterns, the substrings that gate them, the checks.

Credentials pasted into prompts, configs and logs are the most damaging thing a prompt
store can keep, and each vendor writes its own: a fixed prefix (``sk-ant-``, ``ghp_``,
``glpat-``, ``xoxb-``, ``AKIA``, ``AIza``), then random characters. One regular
expression per vendor opens with that literal prefix (a fast scan) and runs only on texts
that contain its *needles* (substrings every match contains; :data:`API_KEY_NEEDLES`);
:func:`check_api_key` then rejects look-alikes (``sk-learn-compatible``, ``ghp_XXXX``,
placeholder runs, a JWT whose header is not JSON).

Two kinds have no prefix and are checked by context instead:

- **AWS secret access keys**: exactly 40 characters of ``[A-Za-z0-9/+]`` with upper- and
  lower-case letters and a digit, ``/`` or ``+``, reported only when ``aws``, ``secret``,
  ``key``, ``token``, ``credential``, ``passw`` or an access key id (``AKIA``/``ASIA``)
  appears in the 120 characters before; a git SHA-1 (40 lower-case hex digits) never
  qualifies.
- **Private-key blocks**: ``-----BEGIN ... PRIVATE KEY-----`` through the matching
  ``END`` line (literal ``\\n`` escapes included, as in JSON), or, cut off, through the
  base64 that follows.
"""

from __future__ import annotations

import base64
import binascii
import re
import string
from typing import Any

Span = tuple[int, int]

API_KEY_PATTERNS: dict[str, str] = {
    # OpenAI legacy (sk-...T3BlbkFJ...), project, service-account and admin keys;
    # Anthropic sk-ant-api03-... and sk-ant-admin01-...
    "openai": r"sk-[A-Za-z0-9_-]{20,300}+",
    "aws": r"A(?:KIA|SIA|GPA|IDA|ROA|NPA|NVA|PKA)[A-Z0-9]{16}",
    "aws_secret": r"[A-Za-z0-9/+](?<![A-Za-z0-9/+].)[A-Za-z0-9/+]{39}(?![A-Za-z0-9/+=])",
    "github": r"gh[pousr]_[A-Za-z0-9]{36,255}",
    "github_pat": r"github_pat_[A-Za-z0-9_]{22,255}",
    "gitlab": r"gl(?:pat|dt|rt|ptt|cbt|ft|imt|oas|soat|agent)-[A-Za-z0-9_-]{20,255}",
    "slack": r"xox[abposre]-[A-Za-z0-9-]{10,250}+",
    "slack_app": r"xapp-[0-9]-[A-Za-z0-9-]{20,250}+",
    "slack_webhook": r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_-]{20,200}",
    "google": r"AIza[0-9A-Za-z_-]{35}",
    "google_oauth": r"GOCSPX-[A-Za-z0-9_-]{28}",
    "google_token": r"ya29\.[0-9A-Za-z_-]{30,500}",
    "stripe": r"k_(?:live|test)_[0-9A-Za-z]{16,247}",  # after s, r or p: checked below
    "stripe_webhook": r"whsec_[A-Za-z0-9]{32,128}",
    "huggingface": r"hf_[A-Za-z0-9]{30,60}",
    "sendgrid": r"SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{30,64}",
    "jwt": r"eyJ[A-Za-z0-9_-]{8,}+\.eyJ[A-Za-z0-9_-]{8,}+\.[A-Za-z0-9_-]{10,}+",
    "private_key": (
        r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
        r"(?:(?s:.){0,12000}?-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
        r"|(?:(?:\\[rn]|\s){1,4}[A-Za-z0-9+/=]{16,100}){1,200}+)"
    ),
}
"""One pattern per kind; each match must also pass :func:`check_api_key`."""

API_KEY_NEEDLES: dict[str, tuple[str, ...]] = {
    "openai": ("-", "sk-"),
    "aws": ("A",),
    "aws_secret": (),  # scanned in windows instead: see API_KEY_WINDOWS
    "github": ("_",),
    "github_pat": ("_", "github_pat_"),
    "gitlab": ("-", "gl"),
    "slack": ("-", "xox"),
    "slack_app": ("-", "xapp-"),
    "slack_webhook": ("/", "hooks.slack"),
    "google": ("I", "AIza"),
    "google_oauth": ("-", "GOCSPX-"),
    "google_token": (".", "ya29."),
    "stripe": ("_",),
    "stripe_webhook": ("_", "whsec_"),
    "huggingface": ("_", "hf_"),
    "sendgrid": (".", "SG."),
    "jwt": ("J", "eyJ"),
    "private_key": ("-----", "PRIVATE KEY"),
}
"""Substrings every match of the kind's pattern contains: a text lacking one is not
scanned with that pattern. A one-character needle is a ``memchr`` (tens of nanoseconds for
a chat message) and goes first; a longer one costs about a nanosecond a character, still
several times less than a regex scan."""

_AWS_WORDS = ("aws", "secret", "akia", "asia", "key", "token", "credential", "passw")


def _aws_context(text: str) -> bool:
    """Whether ``text`` holds a context word, in any case (lower-casing once and testing
    substrings costs a few microseconds; a case-insensitive alternation, ten times that)."""
    lower = text.lower()
    return any(word in lower for word in _AWS_WORDS)


def _base64_table() -> bytes:
    table = bytearray(b" " * 256)
    for ch in (string.ascii_letters + string.digits + "+/").encode():
        table[ch] = ord("a")
    return bytes(table)


_BASE64_CLASS = _base64_table()
_RUN_40 = b"a" * 40


def _token_table() -> bytes:
    table = bytearray(b" " * 256)
    for ch in (string.ascii_letters + string.digits + "_.-/+=~").encode():
        table[ch] = ord("a")
    return bytes(table)


_TOKEN_CLASS = _token_table()
_RUN_15 = b"a" * 15


_LAST: list[tuple[Any, bool]] = [(None, False)]  # (the text last asked about, the answer)


def may_hold_a_key(text: str) -> bool:
    """Whether ``text`` has a run of 15 or more ``[A-Za-z0-9_.-/+=~]``: every key any
    pattern here reports is such a run (the shortest, a Slack ``xoxb-`` token of ten
    characters, is 15) or holds one (a PEM block's base64 lines), and so is every bearer
    token (16+), so a text without one holds neither. Mapping the bytes to one class
    and searching for 15 in a row takes two C loops; ordinary prose, whose words are
    shorter, is done with then."""
    last = _LAST[0]  # one tuple, read and replaced whole: safe across threads
    if last[0] is text:  # the API key and bearer rules ask in turn about the same text
        return last[1]
    answer = _RUN_15 in text.encode("utf-8", "surrogatepass").translate(_TOKEN_CLASS)
    _LAST[0] = (text, answer)
    return answer


def _aws_windows(text: str) -> list[Span]:
    """Where a 40-character secret can be: nowhere unless the text has a run of 40 or
    more ``[A-Za-z0-9/+]`` (the text's bytes mapped to one class and searched for 40 in a
    row: two C loops, a microsecond or two for 2 KB) and a context word; then anywhere."""
    if len(text) < 40:
        return []
    runs = text.encode("utf-8", "surrogatepass").translate(_BASE64_CLASS)
    if _RUN_40 not in runs:
        return []
    if not _aws_context(text):
        return []
    return [(0, len(text))]


API_KEY_WINDOWS = {"aws_secret": _aws_windows}
"""Kinds scanned only inside the windows a function of the text returns, rather than
gated by needles: every match lies in a window (and fails :func:`check_api_key`
outside them), so scanning only there changes nothing."""

_VENDOR_PREFIX = re.compile(r"^(?:AIza|[a-z]+[_-](?:live_|test_)?)")
_WORDY = re.compile(r"[a-z]+(?:-[a-z]+)*")
_PLACEHOLDER = re.compile(r"(.)\1{7,}|(?i:x{6,}|redacted|placeholder)")


def _mixed(body: str) -> bool:
    return (
        any(c.isdigit() for c in body)
        and any(c.isupper() for c in body)
        and any(c.islower() for c in body)
    )


def _classes(body: str) -> int:
    """How many of: a digit, an upper-case letter, a lower-case letter."""
    return (
        any(c.isdigit() for c in body)
        + any(c.isupper() for c in body)
        + any(c.islower() for c in body)
    )


_OPENAI_PREFIXES = ("proj-", "ant-api03-", "ant-admin01-", "ant-", "svcacct-", "admin-", "None-")


def check_api_key(text: str, m: re.Match[str], kind: str) -> Span | None:
    """The span of a real-looking key of ``kind``, or None for a look-alike."""
    start, end = m.span()
    if kind == "stripe":
        if not start or text[start - 1] not in "srp":
            return None
        start -= 1
    if kind == "aws_secret":
        return _check_aws_secret(text, start, end)
    if start and (text[start - 1].isalnum() or text[start - 1] in "_-"):
        return None
    value = m.group()
    if kind == "openai":
        body = value[3:]
        for prefix in _OPENAI_PREFIXES:
            if body.startswith(prefix):
                body = body[len(prefix) :]
                break
        if len(body) < 20 or (_WORDY.fullmatch(body) and "-" in body):
            return None
        return (start, end) if _classes(body) >= 2 or len(body) >= 32 else None
    if kind in ("slack", "slack_app"):
        return (start, end) if any(c.isdigit() for c in value[5:]) else None
    if kind == "jwt":
        header = value.split(".", 1)[0]
        try:
            decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        except (binascii.Error, ValueError):
            return None
        ok = decoded.startswith(b"{") and (b'"alg"' in decoded or b'"typ"' in decoded)
        return (start, end) if ok else None
    if kind == "private_key":
        while end > start and text[end - 1] in " \t\r\n":
            end -= 1
        while end > start and text[end - 2 : end] in ("\\n", "\\r"):
            end -= 2
        return start, end
    if kind in ("github", "gitlab", "huggingface", "google", "stripe", "stripe_webhook"):
        body = _VENDOR_PREFIX.sub("", value)
        if _PLACEHOLDER.search(body) or _classes(body) < 2:
            return None
    return start, end


def _check_aws_secret(text: str, start: int, end: int) -> Span | None:
    value = text[start:end]
    has_upper = any(c.isupper() for c in value)
    has_lower = any(c.islower() for c in value)
    other = any(c.isdigit() or c in "/+" for c in value)
    if not (has_upper and has_lower and other) or _PLACEHOLDER.search(value):
        return None
    if not _aws_context(text[max(0, start - 120) : start]):
        return None
    return start, end


__all__ = ["API_KEY_NEEDLES", "API_KEY_PATTERNS", "API_KEY_WINDOWS", "check_api_key"]

"""Replace detected values in a text: redact, mask, pseudonymize, drop (or keep) them.

A project's anonymization policy names one operator per entity type; this module applies
it to a text and its findings and returns the new text together with one
:class:`AppliedFinding` per finding: where the value was in the original text, which
operator replaced it, and where the replacement sits in the new text. That is everything
the caller needs to store PII findings and to map offsets, and nothing else: no record
returned here holds the raw value (the new text holds it only under ``keep``).

Operators (``value`` is the detected text):

``redact``        ``<EMAIL>``: the entity type in angle brackets.
``mask``          every letter and digit but the last four replaced by ``*``, separators
                  and punctuation kept, so the length is unchanged (``****-****-****-1111``,
                  ``***-**-6789``, ``(***) ***-0143``). Values with fewer than eight letters
                  and digits are masked entirely (keeping four of ``10.0.0.1`` would reveal
                  most of it). For an ``EMAIL`` the whole local part is masked and the
                  domain kept (``********@example.com``): the last four characters of an
                  address are its top-level domain, which hides nothing, while the domain
                  says which organisation wrote without naming the person.
``pseudonymize``  ``<EMAIL_7f3a9c>``: the first ``pseudonym_length`` hex digits (default 6)
                  of HMAC-SHA256 under the project's key of the entity type and the
                  *normalised* value (see :func:`normalize`), so one person's address gets
                  one pseudonym everywhere in the project and counts, joins and dedup keep
                  working, while another project's key gives unrelated pseudonyms and
                  nobody without the key can test a guessed value. The trade-off of the
                  length: 6 hex digits are 24 bits, so among n distinct values of one type
                  about n²/2²⁵ pairs collide (≈ 0.3 at 1,000 values, ≈ 300 at 100,000);
                  counts over large populations want ``pseudonym_length=12`` (48 bits,
                  ≈ 0.02 pairs at ten million).
``drop``          the value removed (nothing else: surrounding spaces stay as they were).
``keep``          the value left in place: the finding is recorded, the text unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import ConfigurationError, Problem, ValidationError
from .detect import EXTENSION_SUFFIX, Finding, resolve_overlaps

OPERATORS: tuple[str, ...] = ("redact", "mask", "pseudonymize", "drop", "keep")
MIN_KEY_BYTES = 16
PSEUDONYM_LENGTHS = range(4, 65)
"""Allowed ``pseudonym_length`` values (hex digits of the HMAC-SHA256)."""

_NON_DIGITS = re.compile(r"[^0-9]")
_NON_ALNUM = re.compile(r"[^0-9A-Za-z]")
_ALNUM = re.compile(r"[^\W_]")


@dataclass(frozen=True, slots=True)
class AppliedFinding:
    """What was done to one finding. ``start``/``end`` index the original text,
    ``replacement_start``/``replacement_end`` the new one (equal after ``drop``)."""

    entity_type: str
    start: int
    end: int
    operator: str
    detector: str
    score: float
    replacement_start: int
    replacement_end: int


@dataclass(frozen=True, slots=True)
class Anonymized:
    """The new text and, in text order, what was applied where."""

    text: str
    applied: list[AppliedFinding]


def normalize(entity_type: str, value: str) -> str:
    """The form of ``value`` that is pseudonymized, so that ways of writing the same
    value map to one pseudonym.

    ``EMAIL`` lower-cased; ``PHONE`` digits only, without a ``(0)`` trunk prefix, and a
    US number written without ``+1`` gets the 1 (``(202) 555-0143`` = ``+1 202-555-0143``),
    an extension kept as ``x123``;
    ``CREDIT_CARD`` and ``US_SSN`` digits only; ``IBAN`` letters and digits, upper-cased;
    ``IP_ADDRESS`` the canonical form of :mod:`ipaddress` (``2001:DB8:0::1`` =
    ``2001:db8::1``); ``PERSON`` and ``LOCATION`` case-folded with single spaces;
    anything else (API keys, bearer tokens) exactly as written.
    """
    value = value.strip()
    if entity_type == "EMAIL":
        return value.lower()
    if entity_type == "PHONE":
        extension = EXTENSION_SUFFIX.search(value)
        number = value[: extension.start()] if extension else value
        digits = _NON_DIGITS.sub("", number.replace("(0)", "", 1))
        if not number.startswith("+") and len(digits) == 10:
            digits = "1" + digits  # a US number in national format
        return digits + (f"x{extension.group(1)}" if extension else "")
    if entity_type in ("CREDIT_CARD", "US_SSN"):
        return _NON_DIGITS.sub("", value)
    if entity_type == "IBAN":
        return _NON_ALNUM.sub("", value).upper()
    if entity_type == "IP_ADDRESS":
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            return value.lower()
    if entity_type in ("PERSON", "LOCATION"):
        return " ".join(value.split()).casefold()
    return value


def pseudonym(entity_type: str, value: str, key: bytes, length: int = 6) -> str:
    """``<TYPE_xxxxxx>`` for ``value``: see the module docs. The same for every way of
    writing the value (:func:`normalize`) under the same key."""
    _check_key(key)
    _check_length(length)
    message = f"{entity_type}\x00{normalize(entity_type, value)}".encode()
    digest = hmac.new(key, message, hashlib.sha256).hexdigest()
    return f"<{entity_type}_{digest[:length]}>"


def mask(entity_type: str, value: str) -> str:
    """``value`` masked as the ``mask`` operator does (same length)."""
    if entity_type == "EMAIL" and "@" in value:
        local, _, domain = value.rpartition("@")
        return _ALNUM.sub("*", local) + "@" + domain
    alnum = [m.start() for m in _ALNUM.finditer(value)]
    keep_from = alnum[-4] if len(alnum) >= 8 else len(value)
    return _ALNUM.sub("*", value[:keep_from]) + value[keep_from:]


def apply_operators(
    text: str,
    findings: Iterable[Finding],
    operator_for: Mapping[str, str],
    key: bytes | None = None,
    *,
    default: str = "redact",
    pseudonym_length: int = 6,
) -> Anonymized:
    """Apply to each finding the operator its entity type has in ``operator_for``.

    A ``"*"`` entry in ``operator_for`` sets the operator of every type not named; without
    one, unnamed types get ``default`` (``redact``: an unplanned type is hidden, not
    leaked). ``key`` (at least 16 bytes, one per project) is needed as soon as any
    operator is ``pseudonymize``. Overlapping findings are reduced first as
    :func:`~promptlake.privacy.detect.resolve_overlaps` does; ``applied`` lists the ones
    applied, in text order.

    Raises :class:`~promptlake.errors.ValidationError` for an unknown operator or a span
    outside the text, and :class:`~promptlake.errors.ConfigurationError` for a missing or
    short key.
    """
    problems = [
        Problem(f"operator_for[{entity_type!r}]", _unknown(op))
        for entity_type, op in operator_for.items()
        if op not in OPERATORS
    ]
    if default not in OPERATORS:
        problems.append(Problem("default", _unknown(default)))
    if problems:
        raise ValidationError(problems)
    fallback = operator_for.get("*", default)
    if fallback == "pseudonymize" or "pseudonymize" in operator_for.values():
        _check_key(key)
        _check_length(pseudonym_length)

    chosen = resolve_overlaps(findings)
    size = len(text)
    bad = [
        Problem(f"findings[{i}]", f"span {f.start}:{f.end} is not inside a text of {size}")
        for i, f in enumerate(chosen)
        if not 0 <= f.start < f.end <= size
    ]
    if bad:
        raise ValidationError(bad)

    pieces: list[str] = []
    applied: list[AppliedFinding] = []
    position = 0  # in the original text
    written = 0  # length of the new text so far
    for f in chosen:
        before = text[position : f.start]
        pieces.append(before)
        written += len(before)
        op = operator_for.get(f.entity_type, fallback)
        value = text[f.start : f.end]
        if op == "redact":
            replacement = f"<{f.entity_type}>"
        elif op == "mask":
            replacement = mask(f.entity_type, value)
        elif op == "pseudonymize":
            replacement = pseudonym(f.entity_type, value, key, pseudonym_length)  # type: ignore[arg-type]
        elif op == "drop":
            replacement = ""
        else:  # keep
            replacement = value
        pieces.append(replacement)
        applied.append(
            AppliedFinding(
                f.entity_type,
                f.start,
                f.end,
                op,
                f.detector,
                f.score,
                written,
                written + len(replacement),
            )
        )
        written += len(replacement)
        position = f.end
    pieces.append(text[position:])
    return Anonymized("".join(pieces), applied)


def _unknown(op: object) -> str:
    return f"unknown operator {op!r}; expected one of {', '.join(OPERATORS)}"


def _check_key(key: bytes | None) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) < MIN_KEY_BYTES:
        raise ConfigurationError(
            f"pseudonymize needs the project's secret key: bytes, at least {MIN_KEY_BYTES} "
            "long (e.g. secrets.token_bytes(32)), kept outside the database"
        )


def _check_length(length: int) -> None:
    if not isinstance(length, int) or length not in PSEUDONYM_LENGTHS:
        raise ValidationError(
            [
                Problem(
                    "pseudonym_length",
                    f"must be {PSEUDONYM_LENGTHS.start}-{PSEUDONYM_LENGTHS.stop - 1} hex digits",
                )
            ]
        )


__all__ = [
    "OPERATORS",
    "Anonymized",
    "AppliedFinding",
    "apply_operators",
    "mask",
    "normalize",
    "pseudonym",
]

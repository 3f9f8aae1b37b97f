"""A labelled corpus of support-chat text with planted personal data and look-alikes.

Precision and recall of a detector mean something only on text whose answers are known.
:func:`generate_corpus` writes documents of about 1 KB of customer-support chat, plants
values of every built-in entity type at recorded spans (in the formats people write them:
grouped and compact card numbers, spaced and compact IBANs, international and US phone
numbers, IPv4 and IPv6, every kind of API key) and plants look-alikes that a detector must
*not* report: card numbers failing Luhn, IBANs with a wrong checksum, order and tracking
numbers, dates, times, version strings, ISBNs, invalid SSNs (000-, 666-, 9xx-, group 00,
serial 0000), invalid IPs, UUIDs, ``sk-learn``, C++ and slice syntax, "the bearer of".

The values are generated here rather than with Faker, on purpose: every planted value is
valid by construction (Luhn and issuer prefix, IBAN country length and mod-97), every
look-alike is invalid by construction, the formats cover exactly what is claimed, the
output is identical for a seed on every machine and version (Faker's data changes between
releases), and the benchmark needs no extra dependency. Documents depend only on
``(seed, index)``, so the first 100 documents of a 2,000-document corpus are the 100
documents of a 100-document one.

:func:`evaluate` scores a detector on such a corpus, per entity type; the matching rule is
in its docstring.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import random
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .detect import ENTITY_TYPES, IBAN_LENGTHS, Detector, Finding

_UPPER, _LOWER, _DIGITS = string.ascii_uppercase, string.ascii_lowercase, string.digits
_ALNUM = _UPPER + _LOWER + _DIGITS
_URLSAFE = _ALNUM + "-_"


@dataclass(frozen=True, slots=True)
class LabelledSpan:
    """A planted value: ``text[start:end]``, of ``entity_type``, written as ``variant``.
    For a look-alike, ``entity_type`` is the type it imitates."""

    entity_type: str
    start: int
    end: int
    variant: str


@dataclass(frozen=True, slots=True)
class LabelledDoc:
    """One document, the personal data planted in it, and the look-alikes planted in it."""

    text: str
    spans: tuple[LabelledSpan, ...]
    decoys: tuple[LabelledSpan, ...]


# -- value generators: valid by construction -----------------------------------------

Value = tuple[str, str]  # (text, variant)

# fmt: off
_FIRST = (
    "james", "mary", "robert", "patricia", "john", "jennifer", "michael", "linda", "david",
    "elizabeth", "william", "barbara", "richard", "susan", "joseph", "jessica", "thomas",
    "sarah", "carlos", "maria", "wei", "yuki", "amara", "lars", "ingrid", "olivia", "noah",
    "emma", "liam", "sofia", "mateo", "chloe", "lucas", "aisha", "omar", "priya", "arjun",
    "hana", "kenji",
)
_LAST = (
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez",
    "martinez", "hernandez", "lopez", "wilson", "anderson", "taylor", "moore", "jackson",
    "martin", "lee", "thompson", "white", "harris", "clark", "lewis", "walker", "hall", "young",
    "king", "wright", "scott", "green", "baker", "adams", "nelson", "hill", "campbell",
    "mueller", "schmidt", "dubois", "rossi", "tanaka", "nakamura", "kowalski", "novak",
    "jensen", "oconnor",
)
_DOMAINS = (
    "example.com", "example.org", "example.net", "mail.example.co.uk", "acme-corp.io",
    "post.example.de", "support.example.fr", "inbox.example.com.au",
)
# fmt: on


def _email(rng: random.Random) -> Value:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    local, variant = rng.choice(
        (
            (f"{first}.{last}", "first.last"),
            (f"{first[0]}{last}", "flast"),
            (f"{first}_{last}{rng.randint(1, 99)}", "first_last99"),
            (f"{first}+{rng.choice(('orders', 'news', 'shop'))}", "plus_tag"),
            (f"{first.title()}.{last.title()}", "capitalised"),
        )
    )
    return f"{local}@{rng.choice(_DOMAINS)}", f"email:{variant}"


def _nxx(rng: random.Random) -> str:
    return f"{rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(0, 9)}"


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(_DIGITS, k=n))


def _phone(rng: random.Random) -> Value:
    a, b, line = _nxx(rng), _nxx(rng), _digits(rng, 4)
    options: list[tuple[str, str]] = [
        (f"+44 20 7946 {_digits(rng, 4)}", "intl:gb"),
        (f"+44 (0)20 7946 {_digits(rng, 4)}", "intl:gb_trunk"),
        (f"+447700900{_digits(rng, 3)}", "intl:gb_compact"),
        (f"+1-{a}-{b}-{line}", "intl:us_dashes"),
        (f"+1 ({a}) {b}-{line}", "intl:us_parens"),
        (f"+49 (0)30 {_digits(rng, 6)}", "intl:de_trunk"),
        (f"+49 30 {_digits(rng, 7)}", "intl:de"),
        (f"+33 1 {' '.join(_digits(rng, 2) for _ in range(4))}", "intl:fr"),
        (f"+81 3-{_digits(rng, 4)}-{_digits(rng, 4)}", "intl:jp"),
        (f"+91 9{_digits(rng, 4)} {_digits(rng, 5)}", "intl:in"),
        (f"+61 2 9{_digits(rng, 3)} {_digits(rng, 4)}", "intl:au"),
        (f"({a}) {b}-{line}", "us:parens"),
        (f"{a}-{b}-{line}", "us:dashes"),
        (f"{a}.{b}.{line}", "us:dots"),
        (f"1-800-{b}-{line}", "us:toll_free"),
    ]
    return rng.choice(options)


def luhn_complete(partial: str) -> str:
    """``partial`` with the Luhn check digit appended."""
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return partial + str(-total % 10)


_ISSUERS: tuple[tuple[str, Callable[[random.Random], str], int], ...] = (
    ("visa", lambda r: "4", 16),
    ("visa13", lambda r: "4", 13),
    ("mastercard", lambda r: str(r.randint(51, 55)), 16),
    ("mastercard2", lambda r: str(r.randint(2221, 2720)), 16),
    ("amex", lambda r: r.choice(("34", "37")), 15),
    ("discover", lambda r: "6011", 16),
    ("jcb", lambda r: str(r.randint(3528, 3589)), 16),
    ("diners", lambda r: "36", 14),
    ("unionpay", lambda r: "62", 16),
)


def _card_number(rng: random.Random) -> tuple[str, str]:
    name, prefix, length = rng.choice(_ISSUERS)
    start = prefix(rng)
    return luhn_complete(start + _digits(rng, length - len(start) - 1)), name


def _group_card(rng: random.Random, number: str) -> tuple[str, str]:
    n = len(number)
    style = rng.choice(("spaces", "dashes", "compact"))
    if style == "compact" or n == 13:
        return number, "compact"
    sep = " " if style == "spaces" else "-"
    if n in (14, 15):  # Amex and Diners: 4-6-5 and 4-6-4
        parts = [number[:4], number[4:10], number[10:]]
    else:
        parts = [number[i : i + 4] for i in range(0, n, 4)]
    return sep.join(parts), style


def _card(rng: random.Random) -> Value:
    number, issuer = _card_number(rng)
    text, style = _group_card(rng, number)
    return text, f"card:{issuer}:{style}"


# BBAN layouts: n digits, a upper-case letters, c upper-case letters or digits
_BBAN = {
    "GB": "4a14n", "DE": "18n", "FR": "10n11c2n", "NL": "4a10n", "ES": "20n",
    "IT": "1a10n12c", "BE": "12n", "CH": "5n12c", "AT": "16n", "PL": "24n",
    "SE": "20n", "IE": "4a14n", "PT": "21n", "NO": "11n", "DK": "14n", "FI": "14n",
}  # fmt: skip


def _bban(rng: random.Random, layout: str) -> str:
    out, count = [], ""
    for ch in layout:
        if ch.isdigit():
            count += ch
            continue
        alphabet = {"n": _DIGITS, "a": _UPPER, "c": _UPPER + _DIGITS}[ch]
        out.append("".join(rng.choices(alphabet, k=int(count))))
        count = ""
    return "".join(out)


def iban_check_digits(country: str, bban: str) -> str:
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{98 - int(numeric) % 97:02d}"


def _iban_parts(rng: random.Random) -> tuple[str, str]:
    country = rng.choice(sorted(_BBAN))
    bban = _bban(rng, _BBAN[country])
    assert len(bban) + 4 == IBAN_LENGTHS[country]
    return country, bban


def _format_iban(rng: random.Random, compact: str) -> tuple[str, str]:
    if rng.random() < 0.7:
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4)), "grouped"
    return compact, "compact"


def _iban(rng: random.Random) -> Value:
    country, bban = _iban_parts(rng)
    text, style = _format_iban(rng, country + iban_check_digits(country, bban) + bban)
    return text, f"iban:{country}:{style}"


def _ip(rng: random.Random) -> Value:
    kind = rng.random()
    if kind < 0.65:
        first = rng.choice([n for n in range(1, 224) if n != 127])
        rest = ".".join(str(rng.randint(0, 255)) for _ in range(3))
        return f"{first}.{rest}", "ipv4"
    prefix = rng.choice((0x20010DB8, 0x2A001450, 0x2607F8B0, 0xFE800000))
    groups = [prefix >> 16, prefix & 0xFFFF] + [rng.randint(0x100, 0xFFFF) for _ in range(6)]
    if rng.random() < 0.6:  # a run of zero groups, written as ::
        zero_from = rng.randint(2, 5)
        for i in range(zero_from, zero_from + rng.randint(2, 3)):
            groups[i] = 0
    address = ipaddress.IPv6Address(int("".join(f"{g:04x}" for g in groups), 16))
    if kind < 0.9:
        return str(address), "ipv6:compressed"
    return address.exploded, "ipv6:exploded"


def _ssn(rng: random.Random) -> Value:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}", "ssn"


def _token(rng: random.Random, n: int, alphabet: str = _ALNUM) -> str:
    """``n`` random characters that include an upper-case letter, a lower-case letter and
    a digit (as real keys do), starting and ending with a letter or digit."""
    chars = rng.choices(alphabet, k=n)
    for i, pool in zip(rng.sample(range(1, n - 1), 3), (_UPPER, _LOWER, _DIGITS), strict=True):
        chars[i] = rng.choice(pool)
    chars[0], chars[-1] = rng.choice(_ALNUM), rng.choice(_ALNUM)
    return "".join(chars)


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _jwt(rng: random.Random) -> str:
    header = _b64({"alg": rng.choice(("HS256", "RS256")), "typ": "JWT"})
    payload = _b64({"sub": _digits(rng, 8), "name": rng.choice(_FIRST), "iat": 1700000000})
    return f"{header}.{payload}.{_token(rng, 43, _URLSAFE)}"


def _api_key(rng: random.Random) -> Value:
    kind = rng.choice(
        ("openai", "openai_project", "aws", "github", "github_pat", "slack", "google",
         "stripe", "jwt")
    )  # fmt: skip
    value = {
        "openai": lambda: "sk-" + _token(rng, 48),
        "openai_project": lambda: "sk-proj-" + _token(rng, rng.randint(60, 120), _URLSAFE),
        "aws": lambda: "AKIA" + _token(rng, 16, _UPPER + _DIGITS).upper(),
        "github": lambda: "ghp_" + _token(rng, 36),
        "github_pat": lambda: f"github_pat_{_token(rng, 22)}_{_token(rng, 59)}",
        "slack": lambda: f"xoxb-{_digits(rng, 12)}-{_digits(rng, 13)}-{_token(rng, 24)}",
        "google": lambda: "AIza" + _token(rng, 35, _URLSAFE),
        "stripe": lambda: rng.choice(("sk_live_", "rk_live_")) + _token(rng, 24),
        "jwt": lambda: _jwt(rng),
    }[kind]()
    return value, f"api_key:{kind}"


def _bearer(rng: random.Random) -> Value:
    if rng.random() < 0.4:
        return _jwt(rng), "bearer:jwt"
    return _token(rng, rng.randint(24, 64), _URLSAFE + "."), "bearer:opaque"


_GENERATORS: dict[str, Callable[[random.Random], Value]] = {
    "EMAIL": _email,
    "PHONE": _phone,
    "CREDIT_CARD": _card,
    "IBAN": _iban,
    "IP_ADDRESS": _ip,
    "US_SSN": _ssn,
    "API_KEY": _api_key,
    "BEARER_TOKEN": _bearer,
}

# -- look-alikes: invalid by construction --------------------------------------------


def _luhn_fail_card(rng: random.Random) -> Value:
    number, _ = _card_number(rng)
    number = number[:-1] + str((int(number[-1]) + rng.randint(1, 9)) % 10)
    return _group_card(rng, number)[0], "luhn_fail"


def _bad_iban(rng: random.Random) -> Value:
    country, bban = _iban_parts(rng)
    compact = country + iban_check_digits(country, bban) + bban
    i = rng.choice([i for i, ch in enumerate(compact) if i >= 4 and ch.isdigit()])
    compact = compact[:i] + str((int(compact[i]) + rng.randint(1, 9)) % 10) + compact[i + 1 :]
    return _format_iban(rng, compact)[0], "bad_checksum"


def _order_number(rng: random.Random) -> Value:
    return rng.choice(
        (
            (f"ORD-{rng.randint(2019, 2025)}-{_digits(rng, 6)}", "order_id"),
            (f"#{rng.randint(100000, 999999)}", "order_hash"),
            (f"1{_digits(rng, 15)}", "order_16_digits"),  # no card issuer starts with 1
            (luhn_complete("9" + _digits(rng, 14)), "order_16_luhn"),
            (f"9400{_digits(rng, 18)}", "tracking_22_digits"),
            (_digits(rng, 1).replace("0", "7") + _digits(rng, 9), "plain_10_digits"),
        )
    )


def _date(rng: random.Random) -> Value:
    y, m, d = rng.randint(2019, 2026), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice(
        (
            (f"{y}-{m:02d}-{d:02d}", "date_iso"),
            (f"{d:02d}/{m:02d}/{y}", "date_eu"),
            (f"{m:02d}/{d:02d}/{y}", "date_us"),
            (f"{d:02d}.{m:02d}.{y}", "date_dots"),
            (f"{y}-{m:02d}-{d:02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z",
             "timestamp"),
        )
    )  # fmt: skip


def _time(rng: random.Random) -> Value:
    h, m, s = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
    return rng.choice(((f"{h:02d}:{m:02d}:{s:02d}", "time_hms"), (f"{h:02d}:{m:02d}", "time_hm")))


def _version(rng: random.Random) -> Value:
    parts = [str(rng.randint(0, 12)) for _ in range(5)]
    return rng.choice(
        (
            (".".join(parts), "version_5_parts"),
            ("version " + ".".join(parts[:4]), "version_4_parts"),
            ("v" + ".".join(parts[:3]), "version_v"),
            (f"10.0.{rng.randint(17000, 22999)}.{rng.randint(100, 4000)}", "build_number"),
        )
    )


def _bad_ip(rng: random.Random) -> Value:
    return rng.choice(
        (
            (f"{rng.randint(256, 999)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.1", "ip_octet"),
            (f"10.{rng.randint(0, 255)}.0.{rng.randint(256, 999)}", "ip_last_octet"),
            ("::1", "ipv6_loopback"),
            (f"00:1A:2B:{rng.randint(10, 99)}:4D:5E", "mac_address"),
        )
    )


def _isbn(rng: random.Random) -> Value:
    body = "978" + _digits(rng, 9)
    check = -sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(body)) % 10
    compact = body + str(check)
    if rng.random() < 0.5:
        return compact, "isbn13_compact"
    return f"{compact[:3]}-{compact[3]}-{compact[4:6]}-{compact[6:12]}-{compact[12]}", "isbn13"


def _bad_ssn(rng: random.Random) -> Value:
    g, s = f"{rng.randint(1, 99):02d}", f"{rng.randint(1, 9999):04d}"
    return rng.choice(
        (
            (f"000-{g}-{s}", "ssn_area_000"),
            (f"666-{g}-{s}", "ssn_area_666"),
            (f"9{_digits(rng, 2)}-{g}-{s}", "ssn_area_9xx"),
            (f"{rng.randint(1, 665):03d}-00-{s}", "ssn_group_00"),
            (f"{rng.randint(1, 665):03d}-{g}-0000", "ssn_serial_0000"),
        )
    )


def _secret_lookalike(rng: random.Random) -> Value:
    return rng.choice(
        (
            ("sk-learn", "sk_learn"),
            ("sk-learn-compatible", "sk_learn_compatible"),
            ("the bearer of this voucher", "bearer_words"),
            ("Bearer token", "bearer_placeholder"),
            ("ghp_XXXX", "github_placeholder"),
        )
    )


def _code(rng: random.Random) -> Value:
    return rng.choice(
        (
            ("std::vector<int>", "cpp_scope"),
            ("x[1::2]", "python_slice"),
            ("a::b", "scope_a_b"),
            ("123e4567-e89b-12d3-a456-426614174000", "uuid"),
        )
    )


def _number_words(rng: random.Random) -> Value:
    return rng.choice(
        (
            (f"1{_digits(rng, 2)}-{_nxx(rng)}-{_digits(rng, 4)}", "phone_area_1xx"),
            (f"${rng.randint(1, 9)},{_digits(rng, 3)}.{_digits(rng, 2)}", "price"),
            (f"+{rng.randint(1, 9)} {_digits(rng, 2)}%", "percent_change"),
        )
    )


_DECOYS: dict[str, tuple[str, Callable[[random.Random], Value]]] = {
    "luhn_fail_card": ("CREDIT_CARD", _luhn_fail_card),
    "bad_iban": ("IBAN", _bad_iban),
    "order_number": ("CREDIT_CARD", _order_number),
    "date": ("PHONE", _date),
    "time": ("IP_ADDRESS", _time),
    "version": ("IP_ADDRESS", _version),
    "bad_ip": ("IP_ADDRESS", _bad_ip),
    "isbn": ("CREDIT_CARD", _isbn),
    "bad_ssn": ("US_SSN", _bad_ssn),
    "secret_lookalike": ("API_KEY", _secret_lookalike),
    "code": ("IP_ADDRESS", _code),
    "number_words": ("PHONE", _number_words),
}

# -- sentences -----------------------------------------------------------------------

_TEMPLATES: dict[str, tuple[str, ...]] = {
    "EMAIL": (
        "You can reach me at {} if anything changes.",
        "Please send the invoice to {} instead of my old address.",
        "My login is {}, but the reset link never arrives.",
        "I have updated the contact address on the account to {}.",
        "Could you cc {} on this ticket?",
        "The confirmation went to {}; I never got it.",
    ),
    "PHONE": (
        "Call me back on {} after five, please.",
        "My number is {}.",
        "We tried {} twice, but nobody answered.",
        "The courier can ring {} when they arrive.",
        "Is {} still the best number to reach you?",
        "Text me at {} when the refund goes through.",
    ),
    "CREDIT_CARD": (
        "I was charged twice on card {} last week.",
        "Card number: {}, expiry 08/27.",
        "Can you refund it to {} instead?",
        "The payment with {} was declined again.",
    ),
    "IBAN": (
        "Please wire the refund to {} by Friday.",
        "My IBAN is {}.",
        "Bank details: {}, account holder on file.",
        "The transfer to {} bounced back yesterday.",
    ),
    "IP_ADDRESS": (
        "The login attempts came from {}.",
        "Our office gateway is {}, please whitelist it.",
        "The server log shows requests from {} during the outage.",
        "Could you unblock {} on the firewall?",
    ),
    "US_SSN": (
        "For the tax form, my SSN is {}.",
        "The application was filed under SSN {} by mistake.",
        "Please remove {} from my profile, I typed it in the wrong field.",
    ),
    "API_KEY": (
        "I accidentally pasted my key {} in the chat, can you delete it?",
        "Here is my config: API_KEY={}",
        "The integration fails even with the new key {} from the dashboard.",
        "export SECRET_TOKEN='{}'",
    ),
    "BEARER_TOKEN": (
        "The request had the header Authorization: Bearer {} and still failed with 401.",
        "curl -H 'Authorization: Bearer {}' https://api.example.com/v1/orders",
        "I send bearer {} with every call, is that right?",
    ),
}

_DECOY_TEMPLATES: dict[str, tuple[str, ...]] = {
    "luhn_fail_card": ("The reference on the receipt is {}.", "Membership number {} expired."),
    "bad_iban": ("The form rejected {} as invalid.", "Is {} the right account format?"),
    "order_number": ("Your order {} has shipped.", "Tracking says {} is out for delivery."),
    "date": ("The package was due on {}.", "I ordered it on {}, before the sale."),
    "time": ("The chat started at {} and nobody replied.", "It broke again at {}."),
    "version": ("We upgraded to {} yesterday.", "The app says {} in the settings page."),
    "bad_ip": ("The settings page shows {} for the proxy.", "The field reads {} now."),
    "isbn": ("The manual (ISBN {}) covers this.", "I ordered the book {} twice."),
    "bad_ssn": ("The test record uses {} as a placeholder.", "Form field example: {}."),
    "secret_lookalike": ("We trained it with {} and pandas.", "The docs mention {} somewhere."),
    "code": ("The snippet uses {} in a loop.", "The log prints {} for each request."),
    "number_words": ("The desk extension is {} now.", "Prices went up by {} this year."),
}

_FILLER = (
    "Hi, I have a problem with my last order.",
    "Thanks for getting back to me so quickly.",
    "I checked the tracking page, but it has not changed since Monday.",
    "Sorry for the delay, we are handling a lot of requests today.",
    "Could you tell me when the replacement will be shipped?",
    "I already tried logging out and back in, but the error is still there.",
    "Let me check that with the billing team.",
    "The item arrived damaged and the box was open.",
    "I would like to cancel my subscription at the end of the month.",
    "Your refund has been approved and should arrive within a few business days.",
    "Is there any way to speed this up?",
    "I understand how frustrating this must be.",
    "Can you confirm the delivery address on the account?",
    "The discount code did not apply at checkout.",
    "We have escalated the ticket to our technical team.",
    "Please do not share passwords in this chat.",
    "I was told last week that someone would call me.",
    "The app keeps crashing when I open the order history.",
    "Our records show the payment went through.",
    "I need the invoice for my company's accounts.",
    "Is the warranty still valid after the repair?",
    "We will email you as soon as there is an update.",
    "That sounds good, thank you for your help.",
    "Could you describe the issue in a bit more detail?",
    "The product page said it would arrive in two days.",
    "I have attached a photo of the receipt.",
    "Let me know if there is anything else I can do for you.",
    "The password reset email goes to my spam folder.",
    "Our team replied to the first message on Tuesday.",
    "Have a great rest of your day!",
)
_SPEAKERS = ("", "", "Customer: ", "Agent: ", "User: ", "Support: ")


_Planted = tuple[str, LabelledSpan, bool]  # (sentence, span within it, is a look-alike)


def _plant(
    rng: random.Random, templates: tuple[str, ...], value: Value, kind: str, decoy: bool
) -> _Planted:
    text, variant = value
    before, _, after = rng.choice(templates).partition("{}")
    before = rng.choice(_SPEAKERS) + before
    span = LabelledSpan(kind, len(before), len(before) + len(text), variant)
    return before + text + after, span, decoy


def generate_corpus(n_docs: int, seed: int = 0, size: int = 1000) -> list[LabelledDoc]:
    """``n_docs`` documents of about ``size`` characters (never less) of support chat,
    each with four planted values of random built-in types and two look-alikes."""
    if n_docs < 0 or size < 1:
        raise ValueError("n_docs must be >= 0 and size >= 1")
    types = sorted(ENTITY_TYPES)
    decoy_kinds = sorted(_DECOYS)
    docs = []
    for index in range(n_docs):
        rng = random.Random(f"promptlake-pii-corpus:{seed}:{index}")
        planted: list[_Planted | str] = []
        for kind in rng.sample(types, 4):
            value = _GENERATORS[kind](rng)
            planted.append(_plant(rng, _TEMPLATES[kind], value, kind, False))
        for name in rng.sample(decoy_kinds, 2):
            imitated, generator = _DECOYS[name]
            planted.append(_plant(rng, _DECOY_TEMPLATES[name], generator(rng), imitated, True))
        length = sum(len(p[0]) + 1 for p in planted) - 1  # joined by one separator each
        while length < size:
            filler = rng.choice(_SPEAKERS) + rng.choice(_FILLER)
            planted.append(filler)
            length += len(filler) + 1
        rng.shuffle(planted)
        docs.append(_assemble(rng, planted))
    return docs


def _assemble(rng: random.Random, parts: list[_Planted | str]) -> LabelledDoc:
    pieces: list[str] = []
    spans: list[LabelledSpan] = []
    decoys: list[LabelledSpan] = []
    offset = 0
    for i, part in enumerate(parts):
        if i:
            sep = "\n" if rng.random() < 0.25 else " "
            pieces.append(sep)
            offset += 1
        if isinstance(part, str):
            sentence = part
        else:
            sentence, span, decoy = part
            moved = LabelledSpan(
                span.entity_type, offset + span.start, offset + span.end, span.variant
            )
            (decoys if decoy else spans).append(moved)
        pieces.append(sentence)
        offset += len(sentence)
    return LabelledDoc("".join(pieces), tuple(spans), tuple(decoys))


# -- scoring -------------------------------------------------------------------------


def evaluate(
    detector: Detector, docs: Iterable[LabelledDoc]
) -> dict[str, dict[str, int | float | None]]:
    """Precision and recall of ``detector`` per entity type it reports.

    The rule: a finding *matches* a planted span of the same entity type when the two
    overlap (share at least one character). Each finding is paired with at most one
    planted span and each planted span with at most one finding: findings are taken in
    text order and each pairs with the unpaired span it overlaps most. A paired span is a
    true positive (``tp``); a finding left unpaired is a false positive (``fp``), whether
    it hit a look-alike, unlabelled text, or a second piece of an already found value
    (so fragmenting a value costs precision); a planted span left unpaired is a false
    negative (``fn``). ``exact`` counts pairs whose spans are identical. Planted spans of
    types the detector does not report are ignored. ``precision`` is
    tp / (tp + fp) and ``recall`` tp / (tp + fn), None when the denominator is 0.
    """
    docs = list(docs)
    return score_findings(detector.entity_types, docs, [detector.detect(d.text) for d in docs])


def score_findings(
    entity_types: Iterable[str],
    docs: Sequence[LabelledDoc],
    findings: Sequence[Sequence[Finding]],
) -> dict[str, dict[str, int | float | None]]:
    """:func:`evaluate` on findings already computed (``findings[i]`` for ``docs[i]``),
    for ``entity_types``: lets a benchmark time detection once and score that run."""
    if len(docs) != len(findings):
        raise ValueError(f"{len(docs)} documents but {len(findings)} lists of findings")
    types = sorted(entity_types)
    counts = {t: {"tp": 0, "fp": 0, "fn": 0, "exact": 0} for t in types}
    for doc, doc_findings in zip(docs, findings, strict=True):
        for kind in types:
            planted = [s for s in doc.spans if s.entity_type == kind]
            found = [f for f in doc_findings if f.entity_type == kind]
            tp, exact = _pair(planted, found)
            c = counts[kind]
            c["tp"] += tp
            c["exact"] += exact
            c["fp"] += len(found) - tp
            c["fn"] += len(planted) - tp
    out: dict[str, dict[str, int | float | None]] = {}
    for kind, c in counts.items():
        tp, fp, fn = c["tp"], c["fp"], c["fn"]
        out[kind] = {
            **c,
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / (tp + fn), 4) if tp + fn else None,
        }
    return out


def _pair(planted: list[LabelledSpan], found: list[Finding]) -> tuple[int, int]:
    free = list(planted)
    tp = exact = 0
    for f in sorted(found, key=lambda f: f.start):
        best, best_overlap = None, 0
        for span in free:
            overlap = min(f.end, span.end) - max(f.start, span.start)
            if overlap > best_overlap:
                best, best_overlap = span, overlap
        if best is not None:
            free.remove(best)
            tp += 1
            exact += best.start == f.start and best.end == f.end
    return tp, exact


def flagged_decoys(
    docs: Sequence[LabelledDoc], findings: Sequence[Sequence[Finding]]
) -> dict[str, int]:
    """How many planted look-alikes were reported (by any finding of any type that
    overlaps them), by variant; ``findings[i]`` are those for ``docs[i]``. Empty when
    none was."""
    flagged: dict[str, int] = {}
    for doc, doc_findings in zip(docs, findings, strict=True):
        for decoy in doc.decoys:
            if any(f.start < decoy.end and decoy.start < f.end for f in doc_findings):
                flagged[decoy.variant] = flagged.get(decoy.variant, 0) + 1
    return flagged


def planted_counts(docs: Iterable[LabelledDoc]) -> dict[str, int]:
    """Planted values per entity type."""
    counts: dict[str, int] = dict.fromkeys(sorted(ENTITY_TYPES), 0)
    for doc in docs:
        for span in doc.spans:
            counts[span.entity_type] = counts.get(span.entity_type, 0) + 1
    return counts


__all__ = [
    "LabelledDoc",
    "LabelledSpan",
    "evaluate",
    "flagged_decoys",
    "generate_corpus",
    "iban_check_digits",
    "luhn_complete",
    "planted_counts",
    "score_findings",
]

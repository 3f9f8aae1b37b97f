"""A second labelled corpus, written with Faker in many locales, to test what was not tuned.

:mod:`promptlake.privacy.corpus` plants exactly the formats the detector documents; a
detector can pass it and still miss what real people write. This generator is the other
half: Faker's own locale data (names, addresses, companies, phone numbers of the US, CA,
UK, DE, FR, IN, BR, AU and JP plans, IBANs of a dozen countries, card numbers of every
scheme it knows) in several kinds of text (support tickets, chat turns, application logs,
code and config snippets, e-mail threads), with every planted value grouped, cased and
punctuated in one of the ways people do, and with look-alikes a detector must leave alone
(order and invoice numbers, tracking ids, version strings, build numbers, timestamps in
several notations, epoch seconds, hashes, UUIDs, ISBNs, prices, coordinates, ports, cards
failing Luhn, IBANs failing mod-97). Person names and postal addresses are planted too,
labelled ``PERSON`` and ``LOCATION``, for the optional NER detector.

A phone number counts as planted only when ``phonenumbers`` (Google's libphonenumber,
installed with the presidio extra) calls it a possible number of its region: Faker's
formats occasionally emit digit strings no plan allows (``00008063608``), and a detector
is not wrong to skip those.

Needs ``faker`` (the ``dev`` extra). Documents depend only on ``(seed, index)``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import string
from collections.abc import Callable
from typing import Any

from .corpus import LabelledDoc, LabelledSpan, iban_check_digits, luhn_complete

PHONE_LOCALES = {
    "en_US": "US", "en_CA": "CA", "en_GB": "GB", "de_DE": "DE", "fr_FR": "FR",
    "en_IN": "IN", "hi_IN": "IN", "pt_BR": "BR", "en_AU": "AU", "ja_JP": "JP",
}  # fmt: skip
IBAN_LOCALES = ("de_DE", "fr_FR", "en_GB", "nl_NL", "es_ES", "it_IT", "pl_PL", "pt_PT",
                "fi_FI", "no_NO", "de_AT", "de_CH", "en_IE", "sv_SE", "da_DK")  # fmt: skip
TEXT_LOCALES = ("en_US", "en_GB", "en_AU", "en_CA", "en_IN", "de_DE", "fr_FR", "pt_BR")
CARD_TYPES = ("visa16", "visa19", "mastercard", "amex", "discover", "diners", "jcb15", "jcb16")
_URLSAFE = string.ascii_letters + string.digits + "-_"
_ALNUM = string.ascii_letters + string.digits
_B64 = _ALNUM + "+/"
_UPPER_DIGITS = string.ascii_uppercase + string.digits


class _Fakers:
    """One Faker per locale, created on first use and reseeded per document."""

    def __init__(self) -> None:
        try:
            from faker import Faker
        except ImportError as exc:  # pragma: no cover - dev extra
            raise ImportError("the realistic PII corpus needs faker: pip install faker") from exc
        self._cls = Faker
        self._made: dict[str, Any] = {}

    def __call__(self, locale: str, seed: int) -> Any:
        fake = self._made.get(locale)
        if fake is None:
            fake = self._made[locale] = self._cls(locale)
        fake.seed_instance(seed)
        return fake


Value = tuple[str, str]  # (text, variant)
Gen = Callable[[random.Random, Callable[[str], Any]], Value]


def _token(rng: random.Random, n: int, alphabet: str = _ALNUM) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


# -- planted values ------------------------------------------------------------------


def _email(rng: random.Random, fake: Callable[[str], Any]) -> Value:
    f = fake(rng.choice(TEXT_LOCALES))
    kind = rng.choice(("email", "free_email", "company_email", "safe_email", "upper"))
    value = f.email() if kind in ("email", "upper") else getattr(f, kind)()
    if kind == "upper":
        local, _, domain = value.partition("@")
        value = local.title() + "@" + domain.upper()
    return value, f"email:{kind}"


def _phone(rng: random.Random, fake: Callable[[str], Any]) -> Value:
    import phonenumbers

    locale = rng.choice(sorted(PHONE_LOCALES))
    region = PHONE_LOCALES[locale]
    f = fake(locale)
    for _ in range(20):
        value = f.phone_number()
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_possible_number(number):
            continue
        style = rng.random()
        if style < 0.5:
            return value, f"phone:{locale}:faker"
        if phonenumbers.is_valid_number(number):
            fmt = (phonenumbers.PhoneNumberFormat.INTERNATIONAL if style < 0.75
                   else phonenumbers.PhoneNumberFormat.NATIONAL)  # fmt: skip
            return phonenumbers.format_number(number, fmt), f"phone:{locale}:formatted"
    return "+44 20 7946 0958", "phone:fallback"


def _group_card(rng: random.Random, number: str) -> tuple[str, str]:
    n = len(number)
    style = rng.choice(("compact", "fours", "fours", "amex", "pairs-odd"))
    sep = rng.choice((" ", "-"))
    if style == "compact":
        return number, "compact"
    if style == "amex" and n in (14, 15):
        return sep.join((number[:4], number[4:10], number[10:])), "4-6-x"
    if style == "pairs-odd" and n == 16:
        return sep.join((number[:4], number[4:8], number[8:12], number[12:])), "4-4-4-4"
    parts = [number[i : i + 4] for i in range(0, n, 4)]
    return sep.join(parts), "fours"


def _card(rng: random.Random, fake: Callable[[str], Any]) -> Value:
    kind = rng.choice(CARD_TYPES)
    number = fake("en_US").credit_card_number(kind)
    text, style = _group_card(rng, number)
    return text, f"card:{kind}:{style}"


def _iban(rng: random.Random, fake: Callable[[str], Any]) -> Value:
    compact = fake(rng.choice(IBAN_LOCALES)).iban()
    text = compact
    style = "compact"
    if rng.random() < 0.6:
        text, style = " ".join(compact[i : i + 4] for i in range(0, len(compact), 4)), "grouped"
    case = rng.random()
    if case < 0.25:
        text, style = text.lower(), style + ":lower"
    elif case < 0.35:
        text, style = text[:2] + text[2:].lower(), style + ":mixed"
    return text, f"iban:{compact[:2]}:{style}"


def _ip(rng: random.Random, fake: Callable[[str], Any]) -> Value:
    f = fake("en_US")
    kind = rng.choice(("ipv4_public", "ipv4_private", "ipv6"))
    return getattr(f, kind)(), f"ip:{kind}"


def _ssn(rng: random.Random, fake: Callable[[str], Any]) -> Value:
    return fake("en_US").ssn(), "ssn"


def _jwt(rng: random.Random) -> str:
    def part(data: dict[str, Any]) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = part({"alg": rng.choice(("HS256", "RS256", "ES256")), "typ": "JWT"})
    body = part(
        {"sub": str(rng.randint(10**6, 10**9)), "iat": rng.randint(1_600_000_000, 1_800_000_000)}
    )
    return f"{header}.{body}.{_token(rng, rng.choice((43, 86)), _URLSAFE)}"


def _pem(rng: random.Random) -> str:
    kind = rng.choice(("RSA ", "EC ", "OPENSSH ", "", "ENCRYPTED "))
    lines = [_token(rng, 64, _B64) for _ in range(rng.randint(3, 8))]
    lines.append(_token(rng, rng.randint(8, 60), _B64) + "==")
    newline = rng.choice(("\n", "\\n"))
    body = newline.join(lines)
    return (
        f"-----BEGIN {kind}PRIVATE KEY-----{newline}{body}{newline}-----END {kind}PRIVATE KEY-----"
    )


_KEYS: dict[str, Callable[[random.Random], str]] = {
    "openai_legacy": lambda r: "sk-" + _token(r, 20) + "T3BlbkFJ" + _token(r, 20),
    "openai_48": lambda r: "sk-" + _token(r, 48),
    "openai_letters": lambda r: "sk-" + _token(r, 40, string.ascii_letters),
    "openai_project": lambda r: "sk-proj-" + _token(r, r.choice((48, 74, 156)), _URLSAFE),
    "openai_svcacct": lambda r: "sk-svcacct-" + _token(r, 74, _URLSAFE),
    "anthropic": lambda r: "sk-ant-api03-" + _token(r, 93, _URLSAFE) + "AA",
    "aws_access": lambda r: r.choice(("AKIA", "ASIA")) + _token(r, 16, string.ascii_uppercase
                                                                    + string.digits),
    "github": lambda r: r.choice(("ghp_", "gho_", "ghs_")) + _token(r, 36),
    "github_pat": lambda r: "github_pat_" + _token(r, 22) + "_" + _token(r, 59),
    "gitlab": lambda r: "glpat-" + _token(r, 20, _URLSAFE),
    "slack": lambda r: f"xox{r.choice('bpa')}-{r.randint(10**10, 10**12)}-"
                       f"{r.randint(10**11, 10**13)}-{_token(r, 24)}",
    "slack_webhook": lambda r: "https://hooks.slack.com/services/T" + _token(
        r, 8, string.ascii_uppercase + string.digits) + "/B" + _token(
        r, 10, string.ascii_uppercase + string.digits) + "/" + _token(r, 24),
    "stripe": lambda r: r.choice(("sk_live_", "rk_live_", "sk_test_")) + _token(r, 24, _ALNUM),
    "google": lambda r: "AIza" + _token(r, 35, _URLSAFE),
    "jwt": _jwt,
    "private_key": _pem,
}  # fmt: skip


def _api_key(rng: random.Random, fake: Callable[[str], Any]) -> Value:
    kind = rng.choice([*sorted(_KEYS), "aws_secret"])
    if kind == "aws_secret":
        return _token(rng, 40, _B64), "api_key:aws_secret"
    return _KEYS[kind](rng), f"api_key:{kind}"


def _bearer(rng: random.Random, fake: Callable[[str], Any]) -> Value:
    if rng.random() < 0.4:
        return _jwt(rng), "bearer:jwt"
    return _token(rng, rng.randint(24, 64), _URLSAFE + "."), "bearer:opaque"


GENERATORS: dict[str, Gen] = {
    "EMAIL": _email, "PHONE": _phone, "CREDIT_CARD": _card, "IBAN": _iban,
    "IP_ADDRESS": _ip, "US_SSN": _ssn, "API_KEY": _api_key, "BEARER_TOKEN": _bearer,
}  # fmt: skip


# -- look-alikes ---------------------------------------------------------------------


def _lookalike(rng: random.Random, fake: Callable[[str], Any]) -> Value:
    f = fake(rng.choice(TEXT_LOCALES))
    y = rng.randint(2019, 2026)
    number = rng.randint(10**15, 10**16 - 1)
    bad_card = str(number)
    if luhn_complete(bad_card[:-1]) == bad_card:
        bad_card = bad_card[:-1] + str((int(bad_card[-1]) + 1) % 10)
    country = rng.choice(("DE", "GB", "FR", "NL"))
    compact = fake({"DE": "de_DE", "GB": "en_GB", "FR": "fr_FR", "NL": "nl_NL"}[country]).iban()
    check = iban_check_digits(country, compact[4:])
    wrong = f"{(int(check) + rng.randint(1, 90)) % 97 + 2:02d}"
    if wrong == check:
        wrong = f"{(int(check) + 1) % 97 + 2:02d}"
    options: list[tuple[str, str]] = [
        (f"ORD-{y}-{rng.randint(10**5, 10**6 - 1)}", "order_id"),
        (f"#{rng.randint(10**5, 10**7)}", "order_hash"),
        (f"INV-{y}-{rng.randint(1, 99999):05d}", "invoice"),
        (f"{rng.randint(10**9, 10**10 - 1)}", "order_10_digits"),
        (
            f"1Z{_token(rng, 6, _UPPER_DIGITS)}{rng.randint(10**9, 10**10)}",
            "ups_tracking",
        ),
        (f"SKU-{rng.randint(10000, 99999)}-{rng.choice(('S', 'M', 'XL'))}", "sku"),
        (f"v{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 200)}", "version_v"),
        (
            f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 200)}"
            f".{rng.randint(1000, 9999)}",
            "version_4",
        ),
        (
            f"{rng.randint(1, 5)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}-rc.{rng.randint(1, 5)}",
            "semver_rc",
        ),
        (f"10.0.{rng.randint(17000, 26000)}.{rng.randint(100, 5000)}", "build_number"),
        (_stamp(f).isoformat(), "iso8601"),
        (_stamp(f).strftime("%Y-%m-%d %H:%M:%S"), "datetime"),
        (_stamp(f).strftime("%d/%m/%Y %H:%M"), "datetime_eu"),
        (_stamp(f).strftime("%a, %d %b %Y %H:%M:%S +0000"), "rfc2822"),
        (str(rng.randint(1_500_000_000, 1_800_000_000)), "epoch_s"),
        (str(rng.randint(1_500_000_000_000, 1_800_000_000_000)), "epoch_ms"),
        (f.md5(), "md5"),
        (f.sha1(), "sha1"),
        (f.sha256(), "sha256"),
        (f.sha1()[:7], "git_short"),
        (f.uuid4(), "uuid4"),
        (f.uuid4().upper(), "uuid_upper"),
        (f.isbn13(), "isbn13"),
        (f"${rng.randint(1, 99)},{rng.randint(100, 999)}.{rng.randint(10, 99)}", "price"),
        (f"{f.latitude():.5f}, {f.longitude():.5f}", "coordinates"),
        (f"localhost:{rng.randint(1024, 65535)}", "port"),
        (bad_card, "luhn_fail_16"),
        (compact[:2] + wrong + compact[4:], "iban_bad_checksum"),
        (f"ticket {rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}", "ticket"),
        ("sk-learn", "sk_learn"),
    ]
    return rng.choice(options)


# -- text ----------------------------------------------------------------------------

_TICKET = (
    "Hi team, {} here. {}", "Customer reports: {}", "{} Please advise.", "Update: {}",
    "Escalated by {}: {}", "{} Thanks, {}",
)  # fmt: skip
_PII_SENTENCES: dict[str, tuple[str, ...]] = {
    "EMAIL": ("please reply to {}", "my e-mail changed to {}", "cc {} on this", "login: {}",
              "send the receipt to {}", "contact={}"),
    "PHONE": ("call me back on {}", "my mobile is {}", "reach us at {}", "tel: {}",
              "Phone {}", "the number on file is {}", "they rang from {} twice",
              "WhatsApp me at {}", "phone_number: \"{}\""),
    "CREDIT_CARD": ("card ending... actually the full number is {}", "I paid with {}",
                    "card={}", "charge {} again", "CC: {}", "the card {} was declined"),
    "IBAN": ("wire it to {}", "IBAN: {}", "my bank account {}", "iban={}",
             "refund to account {} please"),
    "IP_ADDRESS": ("request from {} blocked", "client_ip={}", "ssh admin@{}",
                   "the VPN gives me {}", "whitelist {}"),
    "US_SSN": ("SSN {}", "social security number: {}", "ssn={}", "my SSN is {}"),
    "API_KEY": ("OPENAI_API_KEY={}", "here is the key: {}", "api_key = \"{}\"",
                "token {} stopped working", "export SECRET={}", "key: '{}'",
                "aws_secret_access_key = {}", "\"apiKey\": \"{}\""),
    "BEARER_TOKEN": ("Authorization: Bearer {}", "-H \"Authorization: Bearer {}\"",
                     "headers = {{'Authorization': 'Bearer {}'}}"),
}  # fmt: skip
_DECOY_SENTENCES = (
    "order {} shipped",
    "ref {}",
    "build {} failed",
    "at {} the job restarted",
    "version {} is installed",
    "commit {}",
    "request_id={}",
    "see item {}",
    "timestamp={}",
    "the total was {}",
    "id: {}",
    "checksum {}",
)
_GENRES = ("ticket", "chat", "log", "code", "email")


def _sentence(rng: random.Random, f: Any) -> str:
    return rng.choice(
        (f.sentence(nb_words=rng.randint(6, 14)), f.catch_phrase() + ".", f.bs().capitalize() + ".")
    )


def _stamp(f: Any) -> dt.datetime:
    """A time from Faker between fixed bounds (its defaults end at "now", which would make
    the corpus change from day to day)."""
    return f.date_time_between(dt.datetime(2015, 1, 1), dt.datetime(2026, 1, 1))


def _log_prefix(rng: random.Random, f: Any) -> str:
    level = rng.choice(("INFO", "WARN", "ERROR", "DEBUG"))
    stamp = _stamp(f).strftime("%Y-%m-%dT%H:%M:%S.") + f"{rng.randint(0, 999):03d}Z"
    return f"{stamp} {level} [{f.word()}-{rng.randint(1, 9)}] "


def generate_realistic(n_docs: int, seed: int = 0) -> list[LabelledDoc]:
    """``n_docs`` documents of varied kinds, each with 2-5 planted values of random
    built-in types, 1-3 look-alikes, and a person name or address or two."""
    fakers = _Fakers()
    types = sorted(GENERATORS)
    docs = []
    for index in range(n_docs):
        rng = random.Random(f"promptlake-pii-realistic:{seed}:{index}")
        base = rng.randrange(2**31)

        def fake(locale: str, _rng: random.Random = rng, _base: int = base) -> Any:
            return fakers(locale, _base + _rng.randrange(10**6))

        genre = rng.choice(_GENRES)
        f = fake(rng.choice(TEXT_LOCALES))
        parts: list[tuple[str, list[tuple[str, str, str, bool]]]] = []
        items: list[tuple[str, str, str, bool]] = []
        for kind in rng.sample(types, rng.randint(2, 5)):
            text, variant = GENERATORS[kind](rng, fake)
            items.append((kind, text, variant, False))
        for _ in range(rng.randint(1, 3)):
            text, variant = _lookalike(rng, fake)
            items.append(("DECOY", text, variant, True))
        rng.shuffle(items)
        for kind, text, variant, decoy in items:
            template = rng.choice(_DECOY_SENTENCES if decoy else _PII_SENTENCES[kind])
            parts.append((template, [(kind, text, variant, decoy)]))
        named = [("PERSON", f.name(), "person", False)]
        if rng.random() < 0.5:
            named.append(("LOCATION", f.address().replace("\n", ", "), "address", False))
        doc = _render(rng, f, genre, parts, named)
        docs.append(doc)
    return docs


def _render(
    rng: random.Random,
    f: Any,
    genre: str,
    parts: list[tuple[str, list[tuple[str, str, str, bool]]]],
    named: list[tuple[str, str, str, bool]],
) -> LabelledDoc:
    pieces: list[str] = []
    spans: list[LabelledSpan] = []
    decoys: list[LabelledSpan] = []
    offset = 0

    def emit(text: str) -> None:
        nonlocal offset
        pieces.append(text)
        offset += len(text)

    def plant(template: str, kind: str, value: str, variant: str, decoy: bool) -> None:
        before, _, after = template.partition("{}")
        emit(before.replace("{{", "{").replace("}}", "}"))
        span = LabelledSpan(kind, offset, offset + len(value), variant)
        (decoys if decoy else spans).append(span)
        emit(value)
        emit(after.replace("{{", "{").replace("}}", "}"))

    person = named[0]
    if genre in ("ticket", "email"):
        emit(rng.choice(("Subject: ", "Re: ", "Ticket: ")) + f.sentence(nb_words=5) + "\n")
        emit(rng.choice(("Hello,", "Hi team,", "Dear support,", "Hallo,", "Bonjour,")) + "\n")
    for i, (template, planted) in enumerate(parts):
        if genre == "log":
            emit(_log_prefix(rng, f))
        elif genre == "chat":
            emit(rng.choice(("user: ", "assistant: ", "User: ", "> ", "")))
        elif genre == "code" and i == 0:
            emit(rng.choice(("```python\n", "```bash\n", "```yaml\n", "config:\n")))
        if genre in ("ticket", "email", "chat") and rng.random() < 0.5:
            emit(_sentence(rng, f) + " ")
        for kind, value, variant, decoy in planted:
            plant(template, kind, value, variant, decoy)
        if genre in ("ticket", "email", "chat"):
            emit(rng.choice((".", "!", " - thanks.", ".", "?")))
            if rng.random() < 0.5:
                emit(" " + _sentence(rng, f))
        emit("\n" if genre in ("log", "code") or rng.random() < 0.4 else " ")
    if genre == "code":
        emit("```\n")
    for kind, value, variant, _ in named:
        emit(rng.choice(("Regards, ", "-- ", "From: ", "Name: ")))
        spans.append(LabelledSpan(kind, offset, offset + len(value), variant))
        emit(value)
        emit("\n")
    if genre in ("ticket", "email", "chat"):
        emit(_sentence(rng, f))
    del person
    return LabelledDoc("".join(pieces), tuple(spans), tuple(decoys))


__all__ = ["GENERATORS", "generate_realistic"]

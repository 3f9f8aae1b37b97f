"""Instrumentation: log the model calls an application makes through a provider's SDK,
without changing the application's code beyond one call (``promptlake.instrument``).

Only the official ``openai`` package is covered so far (:mod:`.openai`); code that already
uses OpenTelemetry's GenAI instrumentation exports to ``promptlake serve`` instead (see
the README's recipe).
"""

from __future__ import annotations

from typing import Any

from .openai import Instrumentation, instrument_openai


def instrument(client: Any, project: Any, **options: Any) -> Instrumentation:
    """Log every chat-completions and responses call of ``client`` (an ``openai.OpenAI``
    or ``openai.AsyncOpenAI``, or the ``openai`` module itself: every client) into
    ``project``: a :class:`~promptlake.Project`, a ``Session``, a background logger
    (``proj.logger()``) or one of its sessions. Returns a handle whose ``uninstrument()``
    undoes it. See :func:`promptlake.instrumentation.openai.instrument_openai` for options."""
    return instrument_openai(client, project, **options)


__all__ = ["Instrumentation", "instrument"]

"""``@project.trace``: log every call of a function as a generation.

The call's arguments become the input (a single text argument is the prompt itself;
anything else is stored as JSON), the return value the output, the wall time the latency,
and an exception an ``error`` row before it is re-raised. A failure to log is reported as a
warning and never breaks the traced function.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import PromptLakeError

if TYPE_CHECKING:
    from .client import Project, Session

log = logging.getLogger(__name__)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=repr, allow_nan=False)
    except ValueError:
        return repr(value)


def _call_input(signature: inspect.Signature | None, args: tuple, kwargs: dict) -> str:
    if len(args) == 1 and not kwargs and isinstance(args[0], str):
        return args[0]
    if signature is not None:
        try:
            bound = signature.bind(*args, **kwargs)
            return _as_text(dict(bound.arguments))
        except TypeError:
            pass
    return _as_text({"args": list(args), "kwargs": kwargs})


def traced(
    project: Project,
    *,
    model: str | None,
    name: str | None,
    session: Session | None,
    defaults: dict[str, Any],
) -> Callable[[Callable], Callable]:
    def decorate(fn: Callable) -> Callable:
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):
            signature = None
        call_name = name or getattr(fn, "__qualname__", repr(fn))

        def record(args, kwargs, started, result=None, error=None) -> None:
            fields = dict(defaults)
            fields.update(
                prompt=_call_input(signature, args, kwargs),
                output=None if error is not None else _as_text(result),
                model=model,
                name=call_name,
                latency_ms=(time.perf_counter() - started) * 1000.0,
            )
            if error is not None:
                fields.update(status="error", error=f"{type(error).__name__}: {error}")
            fields = {k: v for k, v in fields.items() if v is not None}
            try:
                if session is not None:
                    session.log(**fields)
                else:
                    project.log(**fields)
            except PromptLakeError as exc:
                log.warning("promptlake could not log a call of %s: %s", call_name, exc)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    result = await fn(*args, **kwargs)
                except Exception as exc:
                    record(args, kwargs, started, error=exc)
                    raise
                record(args, kwargs, started, result=result)
                return result

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                record(args, kwargs, started, error=exc)
                raise
            record(args, kwargs, started, result=result)
            return result

        return wrapper

    return decorate

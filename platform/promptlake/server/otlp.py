"""OTLP/HTTP trace requests: bodies in, spans out, and the export response back.

The exporters send ``ExportTraceServiceRequest`` as protobuf (``application/x-protobuf``)
or as OTLP/JSON (``application/json``), optionally gzipped. OTLP/JSON differs from
protobuf's canonical JSON mapping in two ways: trace and span ids are hex strings (the
mapping expects base64) and enums may be integers; ids are rewritten before parsing, so
both encodings become the same message and one decoding path. A body that is neither is
a :class:`BadRequest` (HTTP 400); a decompressed body over the limit is :class:`TooLarge`
(HTTP 413), found while inflating, so a small gzip bomb never fills memory.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from .genai import SpanInfo

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


class BadRequest(ValueError):
    """A malformed body: HTTP 400 with this message."""


class TooLarge(ValueError):
    """A body over the size limit: HTTP 413."""


def inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """The body with its ``Content-Encoding`` (gzip, deflate or none) undone, at most
    ``limit`` bytes of it."""
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        if len(body) > limit:
            raise TooLarge(f"the body is {len(body)} bytes; the limit is {limit}")
        return body
    if encoding not in ("gzip", "deflate", "x-gzip"):
        raise BadRequest(f"unsupported Content-Encoding {encoding!r} (use gzip or none)")
    wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            raise TooLarge(f"the body inflates to more than {limit} bytes")
        out += inflater.flush()
    except zlib.error as exc:
        raise BadRequest(f"the body is not valid {encoding}: {exc}") from None
    if len(out) > limit:
        raise TooLarge(f"the body inflates to more than {limit} bytes")
    if not inflater.eof:
        raise BadRequest(f"the {encoding} body is truncated")
    return out


def _hex_to_b64(value: Any, where: str, size: int) -> Any:
    if not isinstance(value, str) or value == "":
        return value
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise BadRequest(f"{where} must be {size * 2} hex digits, got {value[:40]!r}") from None
    if len(raw) != size:
        raise BadRequest(f"{where} must be {size * 2} hex digits, got {len(value)}")
    return base64.b64encode(raw).decode()


def _rewrite_ids(doc: Any) -> None:
    """OTLP/JSON's hex ids -> the base64 protobuf's JSON mapping reads."""
    if not isinstance(doc, dict):
        raise BadRequest("the JSON body must be an object with resourceSpans")

    def listed(value: Any, where: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            raise BadRequest(f"{where} must be a list (an OTLP ExportTraceServiceRequest)")
        return value

    for r, resource in enumerate(listed(doc.get("resourceSpans"), "resourceSpans")):
        if not isinstance(resource, dict):
            raise BadRequest(f"resourceSpans[{r}] must be an object")
        for s, scope in enumerate(
            listed(resource.get("scopeSpans"), f"resourceSpans[{r}].scopeSpans")
        ):
            if not isinstance(scope, dict):
                raise BadRequest(f"resourceSpans[{r}].scopeSpans[{s}] must be an object")
            for i, span in enumerate(
                listed(scope.get("spans"), f"resourceSpans[{r}].scopeSpans[{s}].spans")
            ):
                if not isinstance(span, dict):
                    raise BadRequest(
                        f"resourceSpans[{r}].scopeSpans[{s}].spans[{i}] must be an object"
                    )
                where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{i}]"
                for key, size in (("traceId", 16), ("spanId", 8), ("parentSpanId", 8)):
                    if key in span:
                        span[key] = _hex_to_b64(span[key], f"{where}.{key}", size)
                for j, link in enumerate(span.get("links") or []):
                    if isinstance(link, dict):
                        for key, size in (("traceId", 16), ("spanId", 8)):
                            if key in link:
                                link[key] = _hex_to_b64(
                                    link[key], f"{where}.links[{j}].{key}", size
                                )


def parse_request(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    """An ``ExportTraceServiceRequest`` from a (decompressed) body."""
    message = ExportTraceServiceRequest()
    if content_type == PROTOBUF:
        try:
            message.ParseFromString(body)
        except (DecodeError, ValueError, RuntimeError) as exc:
            raise BadRequest(
                f"the body is not an OTLP protobuf ExportTraceServiceRequest: {exc}"
            ) from None
        return message
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    _rewrite_ids(doc)
    try:
        json_format.ParseDict(doc, message, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError, binascii.Error) as exc:
        raise BadRequest(f"the JSON body is not an OTLP ExportTraceServiceRequest: {exc}") from None
    return message


def any_value(value: Any) -> Any:
    """An OTLP ``AnyValue`` as a plain JSON-compatible Python value."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return value.bool_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        number = value.double_value
        return number if number == number and abs(number) != float("inf") else str(number)
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return base64.b64encode(value.bytes_value).decode()  # bytes_value


def attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in kvs}


def spans(request: ExportTraceServiceRequest) -> list[SpanInfo]:
    """Every span of the request, decoded, with its resource and scope."""
    out: list[SpanInfo] = []
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = {
                k: v
                for k, v in (
                    ("name", scope_spans.scope.name),
                    ("version", scope_spans.scope.version),
                )
                if v
            }
            for span in scope_spans.spans:
                out.append(
                    SpanInfo(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex() or None,
                        name=span.name,
                        kind=int(span.kind),
                        start_ns=int(span.start_time_unix_nano),
                        end_ns=int(span.end_time_unix_nano),
                        attributes=attributes(span.attributes),
                        events=[
                            {
                                "name": e.name,
                                "time_unix_nano": int(e.time_unix_nano),
                                "attributes": attributes(e.attributes),
                            }
                            for e in span.events
                        ],
                        links=[
                            {
                                "trace_id": link.trace_id.hex(),
                                "span_id": link.span_id.hex(),
                                "attributes": attributes(link.attributes),
                            }
                            for link in span.links
                        ],
                        status_code=int(span.status.code),
                        status_message=span.status.message,
                        resource=resource,
                        scope=scope,
                    )
                )
    return out


def response_body(rejected: int, message: str, content_type: str) -> bytes:
    """``ExportTraceServiceResponse`` in the request's encoding; ``partial_success`` only
    when something was rejected (an empty one means full success)."""
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    if content_type == PROTOBUF:
        return response.SerializeToString()
    doc: dict[str, Any] = {}
    if rejected:
        doc["partialSuccess"] = {"rejectedSpans": rejected, "errorMessage": message}
    return json.dumps(doc).encode()

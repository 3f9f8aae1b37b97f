"""A small OpenAI-compatible HTTP server on 127.0.0.1 for the instrumentation tests.

It answers ``POST /v1/chat/completions`` and ``POST /v1/responses`` the way the API does
(JSON, or server-sent events with ``stream: true``), deterministically from the request:
the answer echoes the last user text; a request with ``tools`` gets a tool call; a model
named ``fail-500`` or ``fail-429`` gets that HTTP error (429 with ``Retry-After``).
Standard library only (``http.server``), one thread per request.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHUNK = 7  # characters of text per streamed delta


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content)
    return ""


def _rid(prefix: str, body: dict[str, Any]) -> str:
    return prefix + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def chat_answer(body: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]]]:
    messages = body.get("messages") or []
    if body.get("tools") and messages and messages[-1].get("role") == "user":
        name = body["tools"][0]["function"]["name"]
        return None, [
            {
                "id": "call_abc123",
                "type": "function",
                "function": {"name": name, "arguments": '{"city": "Paris"}'},
            }
        ]
    return "echo: " + _last_user_text(messages), []


def _usage(prompt: str, output: str) -> tuple[int, int]:
    return len(prompt.split()) + 5, len(output.split()) + 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _sse(self, events: list[tuple[str | None, Any]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event, payload in events:
            text = (f"event: {event}\n" if event else "") + (
                f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"
            )
            raw = text.encode()
            self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append((self.path, body))  # type: ignore[attr-defined]
        model = str(body.get("model", ""))
        if model.startswith("fail-"):
            status = int(model.split("-", 1)[1])
            headers = (
                {"Retry-After": "0", "x-request-id": "req_fail"}
                if status == 429
                else {"x-request-id": "req_fail"}
            )
            self._json(
                status,
                {
                    "error": {
                        "message": f"fake failure {status}",
                        "type": "server_error",
                        "code": f"e{status}",
                    }
                },
                headers,
            )
            return
        if self.path == "/v1/chat/completions":
            self._chat(body)
        elif self.path == "/v1/responses":
            self._responses(body)
        else:
            self._json(404, {"error": {"message": "not found"}})

    # -- chat completions ---------------------------------------------------------------

    def _chat(self, body: dict[str, Any]) -> None:
        content, calls = chat_answer(body)
        prompt = _last_user_text(body.get("messages") or [])
        p, c = _usage(prompt, content or "")
        usage = {
            "prompt_tokens": p,
            "completion_tokens": c,
            "total_tokens": p + c,
            "prompt_tokens_details": {"cached_tokens": 3},
            "completion_tokens_details": {"reasoning_tokens": 2},
        }
        rid = _rid("chatcmpl-", body)
        finish = "tool_calls" if calls else "stop"
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if calls:
                message["tool_calls"] = calls
            self._json(
                200,
                {
                    "id": rid,
                    "object": "chat.completion",
                    "created": 1700000000,
                    "model": body["model"] + "-2024",
                    "system_fingerprint": "fp_1",
                    "choices": [
                        {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
                    ],
                    "usage": usage,
                },
            )
            return
        base = {
            "id": rid,
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": body["model"] + "-2024",
        }
        events: list[tuple[str | None, Any]] = [
            (
                None,
                {
                    **base,
                    "choices": [
                        {"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}
                    ],
                },
            )
        ]
        for i in range(0, len(content or ""), CHUNK):
            delta = {"content": (content or "")[i : i + CHUNK]}
            events.append(
                (None, {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
            )
        for k, call in enumerate(calls):
            args = call["function"]["arguments"]
            half = len(args) // 2
            first = {
                "index": k,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": args[:half]},
            }
            second = {"index": k, "function": {"arguments": args[half:]}}
            for piece in (first, second):
                events.append(
                    (
                        None,
                        {
                            **base,
                            "choices": [
                                {
                                    "index": 0,
                                    "delta": {"tool_calls": [piece]},
                                    "finish_reason": None,
                                }
                            ],
                        },
                    )
                )
        events.append(
            (None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        )
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append((None, {**base, "choices": [], "usage": usage}))
        events.append((None, "[DONE]"))
        self._sse(events)

    # -- responses ----------------------------------------------------------------------

    def _responses(self, body: dict[str, Any]) -> None:
        given = body.get("input")
        items = [{"role": "user", "content": given}] if isinstance(given, str) else given or []
        prompt = _last_user_text([i for i in items if isinstance(i, dict)])
        rid = _rid("resp_", body)
        if body.get("tools") and items and items[-1].get("role") == "user":
            tool = body["tools"][0]
            output = [
                {
                    "type": "function_call",
                    "id": "fc_1",
                    "call_id": "call_xyz",
                    "name": tool["name"],
                    "arguments": '{"city": "Paris"}',
                    "status": "completed",
                }
            ]
            text = ""
        else:
            text = "echo: " + prompt
            output = [
                {
                    "type": "message",
                    "id": "msg_1",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ]
        p, c = _usage(prompt, text)
        response = {
            "id": rid,
            "object": "response",
            "created_at": 1700000000,
            "status": "completed",
            "model": body["model"] + "-2024",
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": p,
                "output_tokens": c,
                "total_tokens": p + c,
                "input_tokens_details": {"cached_tokens": 4},
                "output_tokens_details": {"reasoning_tokens": 6},
            },
        }
        if not body.get("stream"):
            self._json(200, response)
            return
        started = {**response, "status": "in_progress", "output": [], "usage": None}
        events: list[tuple[str | None, Any]] = [
            (
                "response.created",
                {"type": "response.created", "sequence_number": 0, "response": started},
            ),
        ]
        for n, i in enumerate(range(0, len(text), CHUNK), 1):
            events.append(
                (
                    "response.output_text.delta",
                    {
                        "type": "response.output_text.delta",
                        "sequence_number": n,
                        "item_id": "msg_1",
                        "output_index": 0,
                        "content_index": 0,
                        "delta": text[i : i + CHUNK],
                        "logprobs": [],
                    },
                )
            )
        events.append(
            (
                "response.completed",
                {
                    "type": "response.completed",
                    "sequence_number": len(events),
                    "response": response,
                },
            )
        )
        self._sse(events)


class FakeOpenAI:
    """The server, started on a free port of 127.0.0.1 in a thread."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.requests = []  # type: ignore[attr-defined]
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @property
    def requests(self) -> list[tuple[str, dict[str, Any]]]:
        return self.server.requests  # type: ignore[attr-defined]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

"""A loopback server speaking the OpenAI, Anthropic, Gemini and vLLM protocols, with faults.

Tests, benchmarks and the runner-level tests drive the real provider SDKs against it:

    with fake_api_server(latency=0.2) as server:
        server.plan.next("rate_limit", times=2, retry_after=0.05)   # the next two requests
        server.plan.when("REFUSE-ME", "refusal")                    # every request with a marker
        adapter = OpenAIAdapter(name="gpt-4o", base_url=server.openai_base_url, ...)

Routes (POST, any prefix): ``.../chat/completions`` (OpenAI, Azure, vLLM: ``logprobs`` /
``top_logprobs`` and vLLM's ``prompt_logprobs``), ``.../messages`` (Anthropic),
``...:generateContent`` (Gemini). What a model "says" comes from ``answer(seen)``; the default
(:func:`default_answer`) plays MC, GD, FF and the FF judge consistently from a letter fixed by
the image bytes, so the same request always gets the same answer, whatever the concurrency.

Fault kinds: ``rate_limit`` (429, ``Retry-After``), ``server_error`` (500), ``overloaded``
(503), ``slow`` (answers after ``delay`` seconds), ``malformed`` (200 with a broken body),
``refusal``, ``content_filter``, ``drop`` (connection closed without a response),
``echo_auth`` (400 whose message repeats the credential it received), ``bad_request`` (400).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import socket
import threading
import time
from collections import Counter, deque
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

FAULT_KINDS = ("rate_limit", "server_error", "overloaded", "slow", "malformed", "refusal",
               "content_filter", "drop", "echo_auth", "bad_request")

REFUSAL_TEXT = "I'm sorry, but I can't help with that request."


@dataclass(frozen=True)
class Fault:
    """One injected failure. ``retry_after`` (seconds) goes into the 429 header; ``delay`` is
    how long a ``slow`` answer takes."""

    kind: str
    retry_after: float | None = None
    delay: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(FAULT_KINDS)}")


class FaultPlan:
    """Which requests fail and how.

    ``next(kind, times)`` queues transient faults for the next requests to arrive (whatever they
    are); ``when(marker, kind)`` fails every request whose body contains ``marker`` (persistent,
    so retries run out). ``served`` counts the faults actually delivered, by kind.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Fault] = deque()
        self._rules: list[tuple[str, Fault]] = []
        self.served: Counter[str] = Counter()

    def next(self, kind: str, times: int = 1, **params: Any) -> "FaultPlan":
        with self._lock:
            self._queue.extend(Fault(kind, **params) for _ in range(times))
        return self

    def when(self, marker: str, kind: str, **params: Any) -> "FaultPlan":
        with self._lock:
            self._rules.append((marker, Fault(kind, **params)))
        return self

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._rules.clear()
            self.served.clear()

    @property
    def pending(self) -> int:
        """Queued transient faults not yet delivered."""
        with self._lock:
            return len(self._queue)

    def take(self, body: str) -> Fault | None:
        with self._lock:
            fault = next((f for marker, f in self._rules if marker in body), None)
            if fault is None and self._queue:
                fault = self._queue.popleft()
            if fault is not None:
                self.served[fault.kind] += 1
            return fault


@dataclass
class Seen:
    """A request as the fake model reads it: protocol, model, all text and decoded images."""

    protocol: str  # "openai", "anthropic" or "gemini"
    model: str
    text: str
    images: list[bytes]
    image_types: list[str]
    body: dict[str, Any]
    credential: str | None  # the API key the client presented (to check which key was used)

    @property
    def last_user_text(self) -> str:
        """Text of the final user turn (what a question-answering model responds to)."""
        return self.body.get("_last_user_text", self.text)


_OPTIONS_SHOWN = re.compile(r'\("A":|^A: ', re.MULTILINE)
_JUDGED_ANSWER = re.compile(r"\[AI Assistant\]\s*(.*?)\s*\[End of AI Assistant\]", re.DOTALL)


def image_letter(seen: Seen) -> str:
    """The fake model's belief: a letter fixed by the request's image bytes (by its text when
    it has no image), so every mode asked about the same image agrees."""
    h = hashlib.sha256()
    for img in seen.images:
        h.update(img)
    if not seen.images:
        h.update(seen.text.encode())
    return "AB"[h.digest()[0] % 2]


def default_answer(seen: Seen) -> str:
    """A fake model that plays every mode consistently:

    - options shown (MC, GD): the letter, e.g. ``A``;
    - no options (FF's free-form question): ``The image shows FINDING-A.``;
    - an FF judge prompt (``[Answer A]`` ... ``[AI Assistant]``): the paper's judge format,
      scoring 9 for the option the judged answer names and 2 for the other (5/5 if none).
    """
    text = seen.last_user_text
    if "[Answer A]" in text and "[Answer B]" in text:
        judged = _JUDGED_ANSWER.search(text)
        named = re.search(r"FINDING-([AB])", judged.group(1) if judged else "")
        if named is None:
            return "A: 5\nB: 5\nYour explanation: the answer names neither option."
        a, b = (9, 2) if named.group(1) == "A" else (2, 9)
        return f"A: {a}\nB: {b}\nYour explanation: the answer names option {named.group(1)}."
    letter = image_letter(seen)
    if _OPTIONS_SHOWN.search(text):
        return letter
    return f"The image shows FINDING-{letter}."


def letter_top_logprobs(answer: str, k: int) -> list[tuple[str, float]]:
    """Top next-token log-probabilities a model answering ``answer`` might give, with the
    letter's variants split across tokens ("A" and " A") so adapters must merge them."""
    letter = (answer.strip()[:1] or "A").upper()
    other = "B" if letter == "A" else "A"
    probs = [(letter, 0.55), (f" {letter}", 0.15), (other, 0.2), (f" {other}", 0.05),
             ("The", 0.03), ("**", 0.02)]
    return [(tok, math.log(p)) for tok, p in probs[:max(k, 1)]]


def fake_token_logprob(token: str) -> float:
    """The fake vLLM's log-probability of a prompt token: deterministic, in [-4, -0.05]."""
    digest = hashlib.sha256(token.encode()).digest()
    return -0.05 - (digest[0] / 255.0) * 3.95


def fake_tokenize(text: str) -> list[str]:
    """The fake vLLM's tokenizer: runs of whitespace stick to the following word."""
    return re.findall(r"\s*\S+|\s+$", text)


def render_chat(messages: list[dict[str, Any]], *, add_generation_prompt: bool = True,
                continue_final_message: bool = False) -> str:
    """The fake vLLM's chat template (images become ``<image>``)."""
    out = []
    for i, msg in enumerate(messages):
        content = msg.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") if p.get("type") == "text" else "<image>"
                              for p in content)
        last = i == len(messages) - 1
        if continue_final_message and last and msg["role"] == "assistant":
            out.append(f"<|assistant|>\n{content or ''}")
        else:
            out.append(f"<|{msg['role']}|>\n{content or ''}<|end|>\n")
    if add_generation_prompt and not continue_final_message:
        out.append("<|assistant|>\n")
    return "".join(out)


def _b64decode_any(data: str) -> bytes:
    """Standard or URL-safe base64, padded or not (google-genai sends URL-safe)."""
    data = data.replace("-", "+").replace("_", "/")
    return base64.b64decode(data + "=" * (-len(data) % 4))


def _decode_data_url(url: str) -> tuple[bytes, str]:
    head, _, data = url.partition(",")
    mime = head.removeprefix("data:").split(";")[0]
    return base64.b64decode(data), mime


def _parse_openai(body: dict[str, Any]) -> tuple[str, list[bytes], list[str], str]:
    texts, images, types, last_user = [], [], [], ""
    for msg in body.get("messages", []):
        content = msg.get("content")
        parts = content if isinstance(content, list) else [{"type": "text", "text": content or ""}]
        msg_text = []
        for part in parts:
            if part.get("type") == "text":
                msg_text.append(part.get("text", ""))
            elif part.get("type") == "image_url":
                data, mime = _decode_data_url(part["image_url"]["url"])
                images.append(data)
                types.append(mime)
        texts.append(f"{msg.get('role')}: {''.join(msg_text)}")
        if msg.get("role") == "user":
            last_user = "".join(msg_text)
    return "\n".join(texts), images, types, last_user


def _parse_anthropic(body: dict[str, Any]) -> tuple[str, list[bytes], list[str], str]:
    texts, images, types, last_user = [], [], [], ""
    system = body.get("system")
    if system:
        sys_text = system if isinstance(system, str) else "".join(b.get("text", "") for b in system)
        texts.append(f"system: {sys_text}")
    for msg in body.get("messages", []):
        content = msg.get("content")
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        msg_text = []
        for part in parts:
            if part.get("type") == "text":
                msg_text.append(part.get("text", ""))
            elif part.get("type") == "image":
                images.append(base64.b64decode(part["source"]["data"]))
                types.append(part["source"]["media_type"])
        texts.append(f"{msg.get('role')}: {''.join(msg_text)}")
        if msg.get("role") == "user":
            last_user = "".join(msg_text)
    return "\n".join(texts), images, types, last_user


def _parse_gemini(body: dict[str, Any]) -> tuple[str, list[bytes], list[str], str]:
    texts, images, types, last_user = [], [], [], ""
    system = body.get("systemInstruction") or body.get("system_instruction")
    if system:
        texts.append("system: " + "".join(p.get("text", "") for p in system.get("parts", [])))
    for content in body.get("contents", []):
        msg_text = []
        for part in content.get("parts", []):
            if "text" in part:
                msg_text.append(part["text"])
            inline = part.get("inlineData") or part.get("inline_data")
            if inline:
                images.append(_b64decode_any(inline["data"]))
                types.append(inline.get("mimeType") or inline.get("mime_type"))
        role = content.get("role", "user")
        texts.append(f"{role}: {''.join(msg_text)}")
        if role == "user":
            last_user = "".join(msg_text)
    return "\n".join(texts), images, types, last_user


def _usage_counts(seen: Seen, reply: str) -> tuple[int, int]:
    return len(seen.text) // 4 + 85 * len(seen.images) + 1, len(reply) // 4 + 1


class FakeAPIServer:
    """The running server: its URLs, fault plan, answer function and what it has seen."""

    def __init__(self, *, latency: float = 0.0, answer: Callable[[Seen], str] = default_answer,
                 plan: FaultPlan | None = None) -> None:
        self.latency = latency
        self.answer = answer
        self.plan = plan or FaultPlan()
        self.seen: list[Seen] = []
        self.errors: list[str] = []  # exceptions inside the fake itself (tests assert none)
        self.requests: Counter[str] = Counter()  # by protocol
        self._lock = threading.Lock()
        self._in_flight = 0
        self.max_in_flight = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True,
                                        name="fake-api-server")

    # -- URLs each SDK takes as its base URL ---------------------------------------------------
    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    @property
    def gemini_base_url(self) -> str:
        return self.base_url

    def start(self) -> "FakeAPIServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- request handling ----------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()  # headers and body go out as separate writes: no Nagle delay
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                try:
                    server._handle(self)
                except Exception as exc:  # a bug in the fake: answer 599 and remember it
                    server.errors.append(f"{type(exc).__name__}: {exc}")
                    server._send_json(self, 599, {"error": {"message": "fake server bug"}})

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        return Handler

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length).decode("utf-8", "replace") if length else "{}"
        path = h.path.split("?")[0]
        if path.endswith("/chat/completions"):
            protocol = "openai"
        elif path.endswith("/messages"):
            protocol = "anthropic"
        elif path.endswith(":generateContent"):
            protocol = "gemini"
        else:
            return self._send_json(h, 404, {"error": {"message": f"no route {path}"}})
        credential = (h.headers.get("x-api-key") or h.headers.get("x-goog-api-key")
                      or h.headers.get("api-key")
                      or (h.headers.get("Authorization") or "").removeprefix("Bearer ") or None)
        with self._lock:
            self.requests[protocol] += 1
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            fault = self.plan.take(raw)
            if self.latency:
                time.sleep(self.latency)
            if fault is not None and fault.kind == "slow":
                time.sleep(fault.delay)
                fault = None
            body = json.loads(raw)
            parse = {"openai": _parse_openai, "anthropic": _parse_anthropic,
                     "gemini": _parse_gemini}[protocol]
            text, images, types, last_user = parse(body)
            model = body.get("model") or path.rsplit("/", 1)[-1].split(":")[0]
            seen = Seen(protocol, model, text, images, types,
                        {**body, "_last_user_text": last_user}, credential)
            with self._lock:
                self.seen.append(seen)
            if fault is not None and self._send_fault(h, protocol, fault, credential):
                return
            reply = self.answer(seen)
            builder = {"openai": self._openai_reply, "anthropic": self._anthropic_reply,
                       "gemini": self._gemini_reply}[protocol]
            self._send_json(h, 200, builder(seen, reply, fault))
        finally:
            with self._lock:
                self._in_flight -= 1

    def _send_json(self, h: BaseHTTPRequestHandler, status: int, payload: Any,
                   headers: dict[str, str] | None = None, raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(payload).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                h.send_header(key, value)
            h.end_headers()
            h.wfile.write(data)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            h.close_connection = True

    def _send_fault(self, h: BaseHTTPRequestHandler, protocol: str, fault: Fault,
                    credential: str | None) -> bool:
        """Send an HTTP-level fault; False for faults expressed inside a normal answer."""
        kind = fault.kind
        if kind == "drop":
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        if kind == "malformed":
            self._send_json(h, 200, None, raw=b'{"id": "broken", "choices": [ {"mess')
            return True
        status, etype, message = {
            "rate_limit": (429, "rate_limit_error", "Rate limit reached, slow down."),
            "server_error": (500, "api_error", "Internal server error."),
            "overloaded": (503, "overloaded_error", "The service is overloaded."),
            "bad_request": (400, "invalid_request_error", "Invalid request."),
            "echo_auth": (400, "invalid_request_error",
                          f"Incorrect API key provided: {credential} (header received)"),
        }.get(kind, (None, None, None))
        if status is None:
            return False
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        if protocol == "anthropic":
            payload: dict[str, Any] = {"type": "error", "error": {"type": etype, "message": message}}
        elif protocol == "gemini":
            gstatus = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE",
                       400: "INVALID_ARGUMENT"}[status]
            payload = {"error": {"code": status, "message": message, "status": gstatus}}
        else:
            payload = {"error": {"message": message, "type": etype, "code": etype}}
        self._send_json(h, status, payload, headers)
        return True

    # -- successful answers, per protocol --------------------------------------------------
    def _openai_reply(self, seen: Seen, reply: str, fault: Fault | None) -> dict[str, Any]:
        body = seen.body
        message: dict[str, Any] = {"role": "assistant", "content": reply, "refusal": None}
        finish = "stop"
        if fault is not None and fault.kind == "refusal":
            message = {"role": "assistant", "content": None, "refusal": REFUSAL_TEXT}
        elif fault is not None and fault.kind == "content_filter":
            message["content"] = reply[: len(reply) // 2]
            finish = "content_filter"
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish,
                                  "logprobs": None}
        if body.get("logprobs"):
            k = int(body.get("top_logprobs") or 0)
            top = letter_top_logprobs(reply, k)
            tok, lp = top[0]
            choice["logprobs"] = {"content": [{
                "token": tok, "logprob": lp, "bytes": list(tok.encode()),
                "top_logprobs": [{"token": t, "logprob": p, "bytes": list(t.encode())}
                                 for t, p in top[:k]]}], "refusal": None}
        n_in, n_out = _usage_counts(seen, reply)
        out: dict[str, Any] = {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
            "model": seen.model, "choices": [choice],
            "usage": {"prompt_tokens": n_in, "completion_tokens": n_out,
                      "total_tokens": n_in + n_out}}
        if body.get("prompt_logprobs") is not None:
            rendered = render_chat(body.get("messages", []),
                                   add_generation_prompt=body.get("add_generation_prompt", True),
                                   continue_final_message=body.get("continue_final_message", False))
            positions: list[Any] = []
            for i, tok in enumerate(fake_tokenize(rendered)):
                positions.append(None if i == 0 else {
                    str(1000 + i): {"logprob": fake_token_logprob(tok), "rank": 1,
                                    "decoded_token": tok}})
            out["prompt_logprobs"] = positions
            out["usage"]["prompt_tokens"] = len(positions)
        return out

    def _anthropic_reply(self, seen: Seen, reply: str, fault: Fault | None) -> dict[str, Any]:
        stop = "end_turn"
        content = [{"type": "text", "text": reply}]
        if fault is not None and fault.kind in ("refusal", "content_filter"):
            stop, content = "refusal", [{"type": "text", "text": REFUSAL_TEXT}]
        n_in, n_out = _usage_counts(seen, reply)
        return {"id": "msg_fake", "type": "message", "role": "assistant", "model": seen.model,
                "content": content, "stop_reason": stop, "stop_sequence": None,
                "usage": {"input_tokens": n_in, "output_tokens": n_out}}

    def _gemini_reply(self, seen: Seen, reply: str, fault: Fault | None) -> dict[str, Any]:
        n_in, n_out = _usage_counts(seen, reply)
        usage = {"promptTokenCount": n_in, "candidatesTokenCount": n_out,
                 "totalTokenCount": n_in + n_out}
        if fault is not None and fault.kind == "refusal":
            return {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                    "usageMetadata": {"promptTokenCount": n_in, "totalTokenCount": n_in},
                    "modelVersion": seen.model}
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": reply}]},
                                     "finishReason": "STOP", "index": 0}
        if fault is not None and fault.kind == "content_filter":
            candidate = {"finishReason": "SAFETY", "index": 0,
                         "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                                            "probability": "HIGH", "blocked": True}]}
        config = seen.body.get("generationConfig") or {}
        if config.get("responseLogprobs") and "content" in candidate:
            top = letter_top_logprobs(reply, int(config.get("logprobs") or 1))
            candidate["logprobsResult"] = {
                "topCandidates": [{"candidates": [{"token": t, "logProbability": p}
                                                  for t, p in top]}],
                "chosenCandidates": [{"token": top[0][0], "logProbability": top[0][1]}]}
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": seen.model}


@contextmanager
def fake_api_server(*, latency: float = 0.0, answer: Callable[[Seen], str] = default_answer,
                    plan: FaultPlan | None = None) -> Iterator[FakeAPIServer]:
    """Start a loopback server on a random port for the duration of the block."""
    server = FakeAPIServer(latency=latency, answer=answer, plan=plan).start()
    try:
        yield server
    finally:
        server.stop()

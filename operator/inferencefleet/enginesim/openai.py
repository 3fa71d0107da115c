"""OpenAI request parsing and response shapes, as vLLM's OpenAI-compatible server returns them.

Pure: JSON bodies in, dicts out. Bad requests raise :class:`ApiError`, which the server turns into
an OpenAI-style error body (``{"error": {"message", "type", "param", "code"}}``).

Token counts: a prompt given as a list of token ids counts one token per id; text counts about
four characters per token (chat adds four template tokens per message). The extension object
``"sim": {"prompt_tokens": N, "output_tokens": M}`` overrides both for tests and trace replay:
``output_tokens`` is where the simulated model emits end-of-sequence (finish reason ``stop``);
otherwise generation runs to ``max_tokens`` (default 16, reason ``length``), capped by the
context length.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

CHARS_PER_TOKEN = 4
CHAT_TOKENS_PER_MESSAGE = 4
DEFAULT_MAX_TOKENS = 16
SIM_FIELDS = ("prompt_tokens", "output_tokens")
VOCABULARY = (" the", " fleet", " scales", " with", " demand", " and", " stays", " within", " budget", ".")
_TOKEN_JSON = tuple(json.dumps(word).encode() for word in VOCABULARY)
_PLACEHOLDER = "\x00token\x00"


class ApiError(Exception):
    """A request the API rejects; ``status`` is the HTTP status, ``param`` the offending field."""

    def __init__(self, message: str, param: str | None = None, status: int = 400,
                 kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status
        self.kind = kind

    def body(self) -> dict[str, Any]:
        """The OpenAI error body."""
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": None}}


@dataclass(frozen=True)
class Generation:
    """What one request asks the engine to do, after validation."""

    chat: bool
    prompt_tokens: int
    output_tokens: int
    """Tokens the engine will generate (already capped by max_tokens and the context length)."""
    finish_reason: str
    """'stop' if the simulated model ends before max_tokens, else 'length'."""
    stream: bool
    include_usage: bool


def parse_generation(body: Any, *, chat: bool, served_model: str, max_model_len: int) -> Generation:
    """Validate a completions (``chat=False``) or chat completions request body."""
    if not isinstance(body, dict):
        raise ApiError("the request body must be a JSON object")
    model = body.get("model") or served_model
    if model != served_model:
        raise ApiError(f"The model `{model}` does not exist; this server serves `{served_model}`.",
                       param="model", status=404, kind="NotFoundError")
    sim = _sim_fields(body.get("sim"))
    prompt_tokens = sim.get("prompt_tokens") or (_chat_tokens(body) if chat else _prompt_tokens(body))
    if prompt_tokens >= max_model_len:
        raise ApiError(f"This model's maximum context length is {max_model_len} tokens. However, your request "
                       f"has {prompt_tokens} input tokens.", param="messages" if chat else "prompt")
    max_tokens = _max_tokens(body, chat)
    limit = min(max_tokens, max_model_len - prompt_tokens)
    eos_at = sim.get("output_tokens")
    stops_early = eos_at is not None and eos_at < limit
    _check_n(body)
    stream = _optional(body, "stream", bool, False)
    options = _optional(body, "stream_options", dict, None)
    if options is not None and not stream:
        raise ApiError("stream_options is only allowed when stream is true", param="stream_options")
    include_usage = bool(options and _optional(options, "include_usage", bool, False, "stream_options."))
    return Generation(chat=chat, prompt_tokens=prompt_tokens,
                      output_tokens=eos_at if stops_early and eos_at is not None else limit,
                      finish_reason="stop" if stops_early else "length",
                      stream=stream, include_usage=include_usage)


def _optional(body: dict[str, Any], key: str, kind: type, default: Any, prefix: str = "") -> Any:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ApiError(f"{prefix}{key} must be a {'boolean' if kind is bool else 'JSON object'}, got {value!r}",
                       param=prefix + key)
    return value


def _positive_int(value: Any, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ApiError(f"{param} must be an integer >= 1, got {value!r}", param=param)
    return value


def _sim_fields(sim: Any) -> dict[str, int]:
    if sim is None:
        return {}
    if not isinstance(sim, dict) or set(sim) - set(SIM_FIELDS):
        raise ApiError(f"sim must be an object with keys among {', '.join(SIM_FIELDS)}, got {sim!r}", param="sim")
    return {key: _positive_int(value, f"sim.{key}") for key, value in sim.items()}


def _max_tokens(body: dict[str, Any], chat: bool) -> int:
    key = "max_completion_tokens" if chat and body.get("max_completion_tokens") is not None else "max_tokens"
    value = body.get(key)
    return DEFAULT_MAX_TOKENS if value is None else _positive_int(value, key)


def _check_n(body: dict[str, Any]) -> None:
    n = body.get("n")
    if n is not None and n != 1:
        raise ApiError(f"n must be 1 (the engine simulator returns one choice), got {n!r}", param="n")


def _text_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def _prompt_tokens(body: dict[str, Any]) -> int:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str | list):
        prompt = prompt[0]
    if isinstance(prompt, str) and prompt:
        return _text_tokens(prompt)
    if isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        return len(prompt)
    raise ApiError("prompt must be a non-empty string or a non-empty list of token ids "
                   "(batches of several prompts are not supported)", param="prompt")


def _chat_tokens(body: dict[str, Any]) -> int:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError("messages must be a non-empty list of {role, content} objects", param="messages")
    chars = 0
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ApiError(f"messages[{index}] must be an object with a string role", param=f"messages[{index}]")
        chars += len(_content_text(message.get("content"), index))
    return math.ceil(chars / CHARS_PER_TOKEN) + CHAT_TOKENS_PER_MESSAGE * len(messages)


def _content_text(content: Any, index: int) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list) and all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in content):
        return "".join(p["text"] for p in content)
    raise ApiError(f"messages[{index}].content must be a string or a list of text parts",
                   param=f"messages[{index}].content")


def sse(payload: dict[str, Any]) -> bytes:
    """One server-sent event carrying ``payload`` as compact JSON."""
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def token_text(index: int) -> str:
    """The text of the index-th generated token (a deterministic filler sentence)."""
    return VOCABULARY[index % len(VOCABULARY)]


class ResponseWriter:
    """Builds the response objects of one request: OpenAI's shapes for both endpoints."""

    def __init__(self, generation: Generation, model: str) -> None:
        self.generation = generation
        self.model = model
        self.id = f"{'chatcmpl' if generation.chat else 'cmpl'}-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.object = "chat.completion" if generation.chat else "text_completion"
        # A token chunk differs from the next only in its text: encode the envelope once.
        self._token_template = sse(self.chunk(_PLACEHOLDER)).split(json.dumps(_PLACEHOLDER).encode())

    def usage(self, completion_tokens: int) -> dict[str, int]:
        prompt = self.generation.prompt_tokens
        return {"prompt_tokens": prompt, "completion_tokens": completion_tokens,
                "total_tokens": prompt + completion_tokens}

    def _envelope(self, object_name: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": self.id, "object": object_name, "created": self.created, "model": self.model,
                "choices": choices}

    def complete(self, text: str, completion_tokens: int, finish_reason: str) -> dict[str, Any]:
        """The non-streaming response."""
        if self.generation.chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text},
                      "logprobs": None, "finish_reason": finish_reason}
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
        return self._envelope(self.object, [choice]) | {"usage": self.usage(completion_tokens)}

    def chunk(self, text: str | None, finish_reason: str | None = None) -> dict[str, Any]:
        """One streaming chunk: a token (``text``), the chat role opener (``text=None``), or the finish."""
        if not self.generation.chat:
            choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish_reason}
            return self._envelope("text_completion", [choice])
        if finish_reason is not None:
            delta: dict[str, str] = {}
        elif text is None:
            delta = {"role": "assistant", "content": ""}
        else:
            delta = {"content": text}
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self._envelope("chat.completion.chunk", [choice])

    def token_event(self, index: int) -> bytes:
        """The SSE event of the index-th token (the same bytes as ``sse(self.chunk(token_text(index)))``)."""
        head, tail = self._token_template
        return head + _TOKEN_JSON[index % len(VOCABULARY)] + tail

    def usage_chunk(self, completion_tokens: int) -> dict[str, Any]:
        """The last chunk when ``stream_options.include_usage`` is set: no choices, only usage."""
        object_name = "chat.completion.chunk" if self.generation.chat else "text_completion"
        return self._envelope(object_name, []) | {"usage": self.usage(completion_tokens)}

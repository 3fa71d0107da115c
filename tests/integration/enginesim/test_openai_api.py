"""The OpenAI-compatible routes: response shapes, streaming chunk sequences, errors."""

from __future__ import annotations

import pytest

from .conftest import MODEL, sse_events


async def test_models_and_health(start_engine):
    client = await start_engine()
    health = await client.get("/health")
    assert health.status == 200
    models = await (await client.get("/v1/models")).json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == [MODEL]
    assert models["data"][0]["object"] == "model"
    assert models["data"][0]["max_model_len"] == 8192


async def test_completion_json_counts_token_ids_and_max_tokens(start_engine):
    client = await start_engine()
    response = await client.post("/v1/completions", json={"model": MODEL, "prompt": list(range(37)), "max_tokens": 7})
    assert response.status == 200
    body = await response.json()
    assert body["id"].startswith("cmpl-")
    assert body["object"] == "text_completion"
    assert body["model"] == MODEL
    assert isinstance(body["created"], int)
    [choice] = body["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "length"
    assert len(choice["text"].split()) == 7
    assert body["usage"] == {"prompt_tokens": 37, "completion_tokens": 7, "total_tokens": 44}


async def test_completion_defaults_to_16_tokens_and_estimates_text_prompts(start_engine):
    client = await start_engine()
    body = await (await client.post("/v1/completions", json={"prompt": "x" * 400})).json()
    assert body["usage"]["completion_tokens"] == 16
    assert body["usage"]["prompt_tokens"] == 100  # about four characters per token


async def test_chat_json_shape_and_sim_fields(start_engine):
    client = await start_engine()
    response = await client.post("/v1/chat/completions", json={
        "model": MODEL, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 20,
        "sim": {"prompt_tokens": 300, "output_tokens": 5}})
    body = await response.json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    [choice] = body["choices"]
    assert choice["message"]["role"] == "assistant"
    assert len(choice["message"]["content"].split()) == 5
    assert choice["finish_reason"] == "stop"  # the simulated model ended before max_tokens
    assert body["usage"] == {"prompt_tokens": 300, "completion_tokens": 5, "total_tokens": 305}


async def test_output_is_capped_by_the_context_length(start_engine):
    client = await start_engine(max_model_len=100)
    body = await (await client.post("/v1/completions", json={"prompt": list(range(90)), "max_tokens": 50})).json()
    assert body["usage"]["completion_tokens"] == 10
    assert body["choices"][0]["finish_reason"] == "length"


async def test_completion_stream_chunk_sequence(start_engine):
    client = await start_engine()
    response = await client.post("/v1/completions", json={"prompt": "hi", "max_tokens": 4, "stream": True})
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(await response.text())
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert len(chunks) == 5  # four tokens, then the finish chunk
    assert {c["id"] for c in chunks} == {chunks[0]["id"]} and chunks[0]["id"].startswith("cmpl-")
    assert all(c["object"] == "text_completion" and c["model"] == MODEL for c in chunks)
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, None, "length"]
    assert all(c["choices"][0]["text"] for c in chunks[:4])
    assert "usage" not in chunks[-1]


async def test_chat_stream_role_tokens_finish_usage_done(start_engine):
    client = await start_engine()
    response = await client.post("/v1/chat/completions", json={
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "max_tokens": 3, "stream": True, "stream_options": {"include_usage": True}})
    events = sse_events(await response.text())
    assert events[-1] == "[DONE]"
    role, *tokens, finish, usage = events[:-1]
    assert all(e["object"] == "chat.completion.chunk" for e in events[:-1])
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len(tokens) == 3 and all(t["choices"][0]["delta"]["content"] for t in tokens)
    assert finish["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "length"}
    assert usage["choices"] == []
    assert usage["usage"]["completion_tokens"] == 3
    assert usage["usage"]["prompt_tokens"] == usage["usage"]["total_tokens"] - 3 > 0


@pytest.mark.parametrize(("path", "body", "param", "words"), [
    ("/v1/completions", {"prompt": "hi", "max_tokens": 0}, "max_tokens", ">= 1"),
    ("/v1/completions", {"prompt": "hi", "max_tokens": "many"}, "max_tokens", "integer"),
    ("/v1/completions", {"max_tokens": 3}, "prompt", "non-empty string"),
    ("/v1/completions", {"prompt": ["a", "b"]}, "prompt", "batches"),
    ("/v1/completions", {"prompt": "hi", "n": 2}, "n", "n must be 1"),
    ("/v1/completions", {"prompt": "hi", "stream": "yes"}, "stream", "boolean"),
    ("/v1/completions", {"prompt": "hi", "stream_options": {"include_usage": True}}, "stream_options",
     "only allowed when stream"),
    ("/v1/completions", {"prompt": list(range(200))}, "prompt", "maximum context length is 100"),
    ("/v1/completions", {"prompt": "hi", "sim": {"output_tokens": 0}}, "sim.output_tokens", ">= 1"),
    ("/v1/completions", {"prompt": "hi", "sim": {"speed": 2}}, "sim", "prompt_tokens, output_tokens"),
    ("/v1/chat/completions", {"messages": []}, "messages", "non-empty list"),
    ("/v1/chat/completions", {"messages": [{"content": "hi"}]}, "messages[0]", "string role"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": 5}]}, "messages[0].content", "string"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": -1},
     "max_completion_tokens", ">= 1"),
])
async def test_bad_requests_get_openai_400_errors(start_engine, path, body, param, words):
    client = await start_engine(max_model_len=100)
    response = await client.post(path, json=body)
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert words in error["message"]


async def test_unknown_model_is_404_and_bad_json_is_400(start_engine):
    client = await start_engine()
    missing = await client.post("/v1/completions", json={"model": "other", "prompt": "hi"})
    assert missing.status == 404
    assert "`other` does not exist" in (await missing.json())["error"]["message"]
    broken = await client.post("/v1/completions", data=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status == 400
    assert "not valid JSON" in (await broken.json())["error"]["message"]
    not_object = await client.post("/v1/chat/completions", json=[1, 2])
    assert not_object.status == 400
    assert "JSON object" in (await not_object.json())["error"]["message"]


async def test_timeline_of_an_unknown_request_is_404(start_engine):
    client = await start_engine()
    response = await client.get("/sim/requests/cmpl-nope")
    assert response.status == 404
    assert "no recent request with id 'cmpl-nope'" in (await response.json())["error"]["message"]

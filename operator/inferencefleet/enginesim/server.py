"""The HTTP face of the engine simulator: vLLM's OpenAI-compatible routes, ``/health`` and ``/metrics``.

Routes: ``GET /v1/models``, ``POST /v1/completions``, ``POST /v1/chat/completions`` (JSON, or SSE
chunks ending with ``data: [DONE]`` when ``"stream": true``), ``GET /health``, ``GET /metrics``
and ``GET /sim/requests/{id}`` (the server-clock timeline of a recent request, for tests).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from .engine import EngineConfig, EngineLoop, TokenStream
from .metrics import EngineMetrics
from .openai import ApiError, ResponseWriter, parse_generation, sse, token_text

ENGINE_KEY = web.AppKey("engine", EngineLoop)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def openai_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bad requests answer with OpenAI's error body instead of a traceback."""
    try:
        return await handler(request)
    except ApiError as error:
        return web.json_response(error.body(), status=error.status)


def build_app(config: EngineConfig) -> web.Application:
    """The aiohttp application of one simulated engine (its loop starts and stops with the app)."""
    app = web.Application(middlewares=[openai_errors])
    engine = EngineLoop(config, EngineMetrics(config.model))
    app[ENGINE_KEY] = engine

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        engine.start()
        yield
        await engine.stop()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/sim/requests/{id}", timeline)
    return app


async def health(request: web.Request) -> web.Response:
    """200 with an empty body, like vLLM once its engine is up."""
    return web.Response(status=200)


async def metrics(request: web.Request) -> web.Response:
    """The Prometheus scrape, in the format the scraper's Accept header asks for."""
    body, content_type = request.app[ENGINE_KEY].metrics.exposition(request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type})


async def models(request: web.Request) -> web.Response:
    """The one served model, as vLLM lists it."""
    config = request.app[ENGINE_KEY].config
    card = {"id": config.model, "object": "model", "created": int(time.time()), "owned_by": "vllm",
            "root": config.model, "parent": None, "max_model_len": config.max_model_len}
    return web.json_response({"object": "list", "data": [card]})


async def timeline(request: web.Request) -> web.Response:
    """Server-clock timeline of one of the last finished requests (404 once forgotten)."""
    found = request.app[ENGINE_KEY].timeline(request.match_info["id"])
    if found is None:
        raise ApiError(f"no recent request with id {request.match_info['id']!r}", param="id", status=404,
                       kind="NotFoundError")
    return web.json_response(found)


async def completions(request: web.Request) -> web.StreamResponse:
    return await _generate(request, chat=False)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _generate(request, chat=True)


async def _generate(request: web.Request, *, chat: bool) -> web.StreamResponse:
    engine = request.app[ENGINE_KEY]
    try:
        body = await request.json()
    except ValueError as error:
        raise ApiError(f"the request body is not valid JSON: {error}") from None
    generation = parse_generation(body, chat=chat, served_model=engine.config.model,
                                  max_model_len=engine.config.max_model_len)
    writer = ResponseWriter(generation, engine.config.model)
    tokens = engine.submit(writer.id, generation.prompt_tokens, generation.output_tokens, generation.finish_reason)
    try:
        if generation.stream:
            return await _stream(request, writer, tokens)
        count = 0
        async for _ in tokens:
            count += 1
        text = "".join(token_text(index) for index in range(count))
        return web.json_response(writer.complete(text, count, generation.finish_reason))
    finally:
        tokens.abort()


async def _stream(request: web.Request, writer: ResponseWriter, tokens: TokenStream) -> web.StreamResponse:
    """SSE: (chat: a role chunk), one chunk per token, the finish chunk, (usage), ``data: [DONE]``."""
    generation = writer.generation
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    try:
        if generation.chat:
            await response.write(sse(writer.chunk(None)))
        count = 0
        async for _ in tokens:
            await response.write(writer.token_event(count))
            count += 1
        await response.write(sse(writer.chunk("", generation.finish_reason)))
        if generation.include_usage:
            await response.write(sse(writer.usage_chunk(count)))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
    except ConnectionResetError:  # the client left; the caller records the abort
        pass
    return response


async def serve(config: EngineConfig, host: str, port: int) -> None:
    """Listen until SIGINT or SIGTERM, printing the bound address once ready (``port`` 0 picks one)."""
    runner = web.AppRunner(build_app(config))
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await web.TCPSite(runner, host, port).start()
        print(f"engine-sim: serving {config.model} ({config.profile.name}, time scale {config.time_scale:g}) "
              f"on http://{host}:{runner.addresses[0][1]}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()

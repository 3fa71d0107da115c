"""``inferencefleet engine-sim``: a fake vLLM server whose timing follows the capacity model."""

from __future__ import annotations

import argparse

from ..errors import UserError

DEFAULT_MODEL = "inferencefleet/engine-sim"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ..planner.capacity import REFERENCES

    parser = subparsers.add_parser(
        "engine-sim",
        help="run an OpenAI-compatible fake vLLM server timed by the capacity model",
        description=(
            "Serve /v1/models, /v1/completions and /v1/chat/completions (streaming or not), /health and "
            "vLLM's /metrics. One continuous-batching replica (the fleet simulator's) runs in real time: "
            "each engine step sleeps the capacity profile's step time divided by --time-scale. Latency "
            "histograms are in model seconds; the request field \"sim\": {\"prompt_tokens\": N, "
            "\"output_tokens\": M} fixes token counts for tests and trace replay."
        ),
    )
    parser.add_argument("--profile", required=True, metavar="NAME",
                        help=f"capacity profile, one of: {', '.join(sorted(REFERENCES))}")
    parser.add_argument("--port", required=True, type=int, help="TCP port to listen on (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"served model name (default {DEFAULT_MODEL})")
    parser.add_argument("--max-num-seqs", type=int, default=256, help="most sequences per batch (default 256)")
    parser.add_argument("--max-num-batched-tokens", type=int, default=8192,
                        help="most tokens per engine step, chunked prefill included (default 8192)")
    parser.add_argument("--max-model-len", type=int, default=8192,
                        help="longest prompt plus output in tokens (default 8192)")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="run the model clock this many times faster than real time (default 1)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from ..extras import require

    require("enginesim")
    from ..enginesim.engine import engine_config
    from ..enginesim.server import serve

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be in 0..65535, got {args.port}")
    config = engine_config(profile=args.profile, model=args.model, max_num_seqs=args.max_num_seqs,
                           max_num_batched_tokens=args.max_num_batched_tokens,
                           max_model_len=args.max_model_len, time_scale=args.time_scale)
    try:
        asyncio.run(serve(config, args.host, args.port))
    except OSError as error:
        raise UserError(f"--host/--port: cannot listen on {args.host}:{args.port}: {error.strerror or error}") from None
    return 0

"""The engine simulator: a fake vLLM server for integration and e2e tests without GPUs.

It speaks the OpenAI API (``/v1/models``, ``/v1/completions``, ``/v1/chat/completions`` with SSE
streaming), answers ``/health`` and exports vLLM's metrics on ``/metrics``. Its timing is not
invented here: one asyncio task drives the fleet simulator's continuous-batching replica
(``sim.replica``) step by step and sleeps each step's time from the planner's capacity model
(``planner.capacity``), divided by a time scale for fast tests. This package does network I/O,
which is why it lives outside the pure ``sim/`` layer.
"""

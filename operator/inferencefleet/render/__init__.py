"""Pure rendering of an InferencePool into the Kubernetes objects the operator applies.

No I/O here: every function takes models and returns plain dicts (or YAML text), so the live
operator, the CLI and the tests share one implementation. Entry point:
:func:`inferencefleet.render.workloads.render_pool`.
"""

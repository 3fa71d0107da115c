"""Sub-commands of the ``inferencefleet`` CLI.

Each module defines ``register(subparsers)``, which adds its parser and sets ``func`` to a
``run(args) -> int`` function. Modules import heavy dependencies inside ``run`` so that
``inferencefleet --help`` stays fast.
"""

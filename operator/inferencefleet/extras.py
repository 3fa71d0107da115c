"""Optional dependency groups (the package's extras) and the clear error a command gives without one.

The operator image installs no extra: the simulator's plots need ``[sim]``, the engine simulator
``[enginesim]``. A command that needs a missing extra says which one to install instead of failing
with an ImportError.
"""

from __future__ import annotations

import importlib.util

from .errors import UserError

EXTRAS: dict[str, tuple[str, ...]] = {
    "sim": ("matplotlib",),
    "enginesim": ("aiohttp",),
}
"""Extra name -> the top-level modules it provides that the base install lacks."""


def missing_extra_error(extra: str, modules: list[str]) -> UserError:
    """The error naming the extra to install for the missing ``modules``."""
    return UserError(f"this command needs the optional dependencies of inferencefleet[{extra}] "
                     f"(missing Python module {', '.join(modules)}): "
                     f"install them with pip install 'inferencefleet[{extra}]'")


def require(extra: str) -> None:
    """Raise a UserError naming ``extra`` unless every module it provides can be imported."""
    missing = [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]
    if missing:
        raise missing_extra_error(extra, missing)


def extra_providing(module: str | None) -> str | None:
    """The extra that provides ``module`` (a dotted name), or None when it belongs to no extra."""
    top = (module or "").partition(".")[0]
    return next((extra for extra, modules in EXTRAS.items() if top in modules), None)

"""The registry of subcommands: each command module registers its commands with ``@subcommand``.

Every module of ``crackle_codec.cli.commands`` is imported by ``load_commands`` (in name order),
so adding a command is adding one module there (or one function to an existing module).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Callable

_SUBCOMMANDS: list[tuple[str, str, Callable[[argparse.ArgumentParser], None]]] = []


def _subcommand(name: str, summary: str):
    """Register ``setup(parser)`` as the builder of subcommand ``name``."""

    def register(setup: Callable[[argparse.ArgumentParser], None]):
        _SUBCOMMANDS.append((name, summary, setup))
        return setup

    return register



def load_commands() -> list[tuple[str, str, Callable[[argparse.ArgumentParser], None]]]:
    """Import every module of ``crackle_codec.cli.commands``; the registered subcommands, in order."""
    from . import commands

    for module in sorted(info.name for info in pkgutil.iter_modules(commands.__path__)):
        importlib.import_module(f"{commands.__name__}.{module}")
    return _SUBCOMMANDS

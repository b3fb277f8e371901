"""Helpers shared by the catalog tests."""

from __future__ import annotations

import textwrap


def script_source(header: str, body: str = "print('hello')\n") -> str:
    """A script whose docstring is ``ScriptsManager Metadata:`` followed by ``header``."""
    lines = textwrap.dedent(header).strip("\n")
    return f'"""\nScriptsManager Metadata:\n{lines}\n"""\n\n{textwrap.dedent(body)}'

"""What the command-line modules print to stderr with: the shared console, one-line errors
and plain lines. Only CLI modules (cli.py, cli_models.py) use it; library code never prints."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape

err = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 1) -> None:
    """Print ``error: message`` on stderr and exit with ``code``."""
    # messages are text, not rich markup (e.g. "file.safetensors[@revision]")
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    sys.exit(code)


def say(message: str) -> None:
    """A line on stderr, as plain text (paths and hashes are not rich markup)."""
    err.print(message, soft_wrap=True, markup=False)

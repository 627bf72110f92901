"""What the command-line modules print with, and how they exit: the shared stderr console,
one-line errors, plain lines, tables, and Ctrl-C/SIGTERM handling. Only the modules of
``srgan_cli.cli`` use it; library code never prints."""

from __future__ import annotations

import shlex
from contextlib import contextmanager
from typing import Iterator

import click
from rich.console import Console
from rich.markup import escape

from srgan_cli.errors import SrganError

err = Console(stderr=True, highlight=False)


def error_line(message: str, console: Console | None = None) -> None:
    """``error: message`` on stderr (or on ``console``, e.g. a progress bar's), no exit."""
    # messages are text, not rich markup (e.g. "file.safetensors[@revision]")
    (console or err).print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


class Failure(SystemExit):
    """The exit :func:`fail` raises: a SystemExit with ``code`` that keeps the message it
    printed (``srgan upscale --json`` repeats it on stdout)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code)
        self.message = message


def fail(message: str, code: int = 1) -> None:
    """Print ``error: message`` on stderr and exit with ``code``."""
    error_line(message)
    raise Failure(code, message)


@contextmanager
def exit_on_error(code: int = 1) -> Iterator[None]:
    """``with exit_on_error():`` turns the library's typed errors into ``fail(message)``."""
    try:
        yield
    except SrganError as e:
        fail(str(e), code)


def say(message: str) -> None:
    """A line on stderr, as plain text (paths and hashes are not rich markup)."""
    err.print(message, soft_wrap=True, markup=False)


def print_table(table) -> None:
    """A :class:`srgan_cli.bench.run.Table` on stdout: a rich table when stdout is a terminal
    wide enough for it; elsewhere (a pipe, a file, a narrow terminal) the same table as
    Markdown with aligned columns, which never wraps inside a cell."""
    from rich.table import Table

    out = Console()
    shown = Table(title=table.title)
    for name, right in table.columns:
        shown.add_column(name, justify="right" if right else "left")
    for row in table.rows:
        shown.add_row(*row)
    if out.is_terminal and out.measure(shown).maximum <= out.width:
        out.print(shown)
        return
    head = [name for name, _ in table.columns]
    rows = [head] + [list(r) for r in table.rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    right = [r for _, r in table.columns]

    def line(cells) -> str:
        return "| " + " | ".join(v.rjust(w) if r else v.ljust(w)
                                 for v, w, r in zip(cells, widths, right)) + " |"

    if table.title:
        click.echo(f"{table.title}\n")
    click.echo(line(head))
    click.echo("|" + "|".join(("-" * (w + 1) + ":") if r else (":" + "-" * (w + 1))
                             for w, r in zip(widths, right)) + "|")
    for r in rows[1:]:
        click.echo(line(r))


def command_line(ctx: click.Context) -> str:
    """The command as given (options set on the command line only), for run records."""
    words = ["srgan", ctx.info_name]
    for param in ctx.command.params:
        if ctx.get_parameter_source(param.name) != click.core.ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[param.name]
        flag = param.opts[0]
        if isinstance(param, click.Option) and param.is_flag:
            words.append(flag if value else (param.secondary_opts or [flag])[0])
        elif isinstance(value, (tuple, list)):
            for v in value:
                words += [flag, str(v)]
        else:
            words += [flag, str(value)]
    return shlex.join(words)


def interrupt_on_signals() -> None:
    """Make SIGINT and SIGTERM raise KeyboardInterrupt, so training checkpoints and stops.

    Needed because a job started in the background by a non-interactive shell inherits
    an ignored SIGINT, and schedulers stop jobs with SIGTERM.
    """
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


@contextmanager
def interrupts() -> Iterator[None]:
    """Inside the block SIGINT and SIGTERM raise KeyboardInterrupt (see
    :func:`interrupt_on_signals`); the previous handlers are back after it."""
    import signal

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    interrupt_on_signals()
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


class Interrupted:
    """``with Interrupted() as stop:`` ends the block on Ctrl-C or SIGTERM instead of the
    program; ``stop`` is then true, and further signals are ignored while the caller cleans
    up; :meth:`restore` puts the previous handlers back."""

    def __init__(self) -> None:
        self.happened = False
        self._saved: dict = {}

    def __bool__(self) -> bool:
        return self.happened

    def __enter__(self) -> "Interrupted":
        import signal

        self._saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        interrupt_on_signals()
        return self

    def __exit__(self, kind, value, tb) -> bool:
        if kind is not None and issubclass(kind, KeyboardInterrupt):
            import signal

            for s in self._saved:
                signal.signal(s, signal.SIG_IGN)
            self.happened = True
            return True
        return False

    def restore(self) -> None:
        import signal

        for s, handler in self._saved.items():
            signal.signal(s, handler)

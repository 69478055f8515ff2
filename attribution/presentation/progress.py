"""A command-line tool's progress: one line redrawn in place on a terminal, or a line per tenth of the
work in a log file (training and batch jobs run for hours with their output sent to a file)."""

from __future__ import annotations

import sys


def show_progress(line: str, done: int, total: int) -> None:
    """Draw ``line`` for ``done`` of ``total`` units of work on stderr."""
    if sys.stderr.isatty():
        sys.stderr.write("\r" + line + ("\n" if done == total else ""))
    elif done == total or done % max(1, total // 10) == 0:
        sys.stderr.write(line + "\n")
    sys.stderr.flush()

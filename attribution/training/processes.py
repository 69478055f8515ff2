"""Worker processes that do not outlive the training run that started them."""

from __future__ import annotations

import multiprocessing
import os
import threading
from multiprocessing.connection import wait


def exit_with_parent() -> None:
    """Call in a process started by ``multiprocessing`` (a pool's initializer): it exits as soon as the
    process that started it ends, even one killed without the chance to stop its pool (a thread waits
    on the parent's sentinel)."""
    sentinel = multiprocessing.parent_process().sentinel
    threading.Thread(target=lambda: (wait([sentinel]), os._exit(1)), daemon=True).start()

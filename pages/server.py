"""The web server's own settings, applied when ``streamlit run`` imports ``app.py`` to serve it."""

from __future__ import annotations

import asyncio.base_events
import ctypes
import os
import socket

M_ARENA_MAX = -8  # glibc's mallopt parameter for the most arenas malloc keeps
ARENAS = 2


def send_without_delay() -> None:
    """Send every TCP write of this process at once (TCP_NODELAY), as asyncio means to.

    asyncio turns Nagle's algorithm off only for sockets whose ``proto`` is IPPROTO_TCP, and
    Streamlit binds its server socket with ``socket.socket(family)``, whose ``proto`` is 0, so its
    connections kept Nagle on: a response written as headers, then body, waited for the browser's
    delayed acknowledgement, about 40 ms a static file on a kept-alive connection. A new visitor's
    page loads about 100 of them over six connections.
    """
    def set_nodelay(sock: socket.socket) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    asyncio.base_events._set_nodelay = set_nodelay


def cap_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Let glibc's malloc keep at most ``arenas`` arenas for all of this process's threads, as
    ``MALLOC_ARENA_MAX`` would (a value the user set is left alone). Returns whether it was set (False
    off glibc).

    glibc gives each new thread an arena of its own, up to eight per core, and an arena holds on to
    what is freed into it; Streamlit runs every script run in a thread and TensorFlow keeps pools of
    its own. Playing Pong for 3,000 steps, the server sat at 1.5 to 1.8 GB; with two arenas, at 1.1 to
    1.2 GB, at about the same pace (RELIABILITY.md).
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        return bool(ctypes.CDLL(None).mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # not glibc
        return False

"""The web server's own settings, applied when ``streamlit run`` imports ``app.py`` to serve it."""

from __future__ import annotations

import asyncio.base_events
import socket


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

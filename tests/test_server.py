"""The web server's own settings (pages/server.py)."""

import asyncio
import asyncio.base_events
import socket
from concurrent.futures import ThreadPoolExecutor

from pages.server import send_without_delay


def accepted_connection_nodelay() -> int:
    """TCP_NODELAY of a connection that asyncio accepts on a socket bound the way Streamlit binds its
    server's (``socket.socket(family)``, whose ``proto`` is 0)."""
    async def accept_one() -> int:
        loop = asyncio.get_running_loop()
        listener = socket.socket(family=socket.AF_INET)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        accepted = loop.create_future()

        class Accept(asyncio.Protocol):
            def connection_made(self, transport):
                accepted.set_result(transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP,
                                                                                 socket.TCP_NODELAY))

        server = await loop.create_server(Accept, sock=listener)
        _, writer = await asyncio.open_connection(*listener.getsockname())
        nodelay = await asyncio.wait_for(accepted, 10)
        writer.close()
        server.close()
        await server.wait_closed()
        return nodelay

    with ThreadPoolExecutor(1) as thread:  # a loop of its own: Playwright's tests keep one running in this thread
        return thread.submit(asyncio.run, accept_one()).result()


def test_the_server_sends_each_write_at_once(monkeypatch):
    monkeypatch.setattr(asyncio.base_events, "_set_nodelay", asyncio.base_events._set_nodelay)  # restored after
    assert accepted_connection_nodelay() == 0  # asyncio alone leaves Nagle's algorithm on for such a socket
    send_without_delay()
    assert accepted_connection_nodelay() != 0

"""The web server's own settings (pages/server.py)."""

import asyncio
import asyncio.base_events
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pages.server import send_without_delay

ROOT = Path(__file__).resolve().parents[1]
ARENAS_OF_EIGHT_THREADS = """
import ctypes, sys, tempfile, threading
from pages.server import cap_malloc_arenas
print(cap_malloc_arenas() if sys.argv[1] == "capped" else "free")
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.free.argtypes, libc.fopen.restype = ctypes.c_void_p, [ctypes.c_void_p], ctypes.c_void_p
together = threading.Barrier(8)
def allocate():  # a thread's first malloc takes an arena of its own while the cap allows
    block = libc.malloc(1000)
    together.wait()
    libc.free(block)
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
path = tempfile.mktemp()
report = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, ctypes.c_void_p(report))
libc.fclose(ctypes.c_void_p(report))
print(open(path).read().count("<heap nr="))
"""


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


def arenas_after_eight_threads(how: str, **env) -> tuple[str, int]:
    """In a fresh process: what ``cap_malloc_arenas`` returned ("free" where not called) and how many
    malloc arenas eight threads allocating at once left."""
    environment = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"} | env
    done = subprocess.run([sys.executable, "-c", ARENAS_OF_EIGHT_THREADS, how], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=60, check=True)
    returned, arenas = done.stdout.split()
    return returned, int(arenas)


def test_the_server_keeps_two_malloc_arenas_instead_of_one_a_thread():
    _, arenas = arenas_after_eight_threads("free")
    assert arenas > 2  # the main thread's and one a thread, up to eight per core
    assert arenas_after_eight_threads("capped") == ("True", 2)
    assert arenas_after_eight_threads("capped", MALLOC_ARENA_MAX="4") == ("False", 4)  # the user's choice stands


"""TCP settings for the app server: Nagle's algorithm off on its sockets.

Streamlit's server binds its listening socket itself, with ``proto`` 0, and asyncio turns
TCP_NODELAY on only for accepted sockets that report ``IPPROTO_TCP`` (the same bug as uvicorn
issue #3149). So Nagle's algorithm stays on for every browser connection, and a click's rerun,
several small websocket frames, waits on the browser's delayed acknowledgements. What that cost
is measured in benchmarks/results/README.md.

`disable_nagle` turns TCP_NODELAY on for every TCP socket the process holds. On Linux, sockets
accepted later inherit it from the listening socket, so `lifespan`, the app server's start-up hook,
calls it once, before any browser connects (a page load waits on the stall too).
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

FD_FOLDERS = ("/proc/self/fd", "/dev/fd")


def disable_nagle() -> int:
    """Set TCP_NODELAY on each TCP socket of this process that lacks it; return how many changed.

    Sockets are found through the process's descriptor folder (Linux, macOS); elsewhere nothing
    changes and 0 is returned. Descriptors that close meanwhile, or are not sockets, are skipped.
    """
    folder = next((path for path in FD_FOLDERS if os.path.isdir(path)), None)
    if folder is None:
        return 0
    changed = 0
    for name in os.listdir(folder):
        try:
            descriptor = os.dup(int(name))
        except (OSError, ValueError):
            continue
        try:
            view = socket.socket(fileno=descriptor)  # a second handle on the same socket
        except OSError:
            os.close(descriptor)
            continue
        with view:
            if view.family not in (socket.AF_INET, socket.AF_INET6) or view.type != socket.SOCK_STREAM:
                continue
            try:
                if not view.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY):
                    view.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    changed += 1
            except OSError:
                continue
    return changed


@asynccontextmanager
async def lifespan(app: object) -> AsyncIterator[None]:
    """The app server's start-up and shut-down (an ASGI lifespan, as ``st.App`` takes one).

    Streamlit runs it once its listening socket is bound and listening, before it accepts a
    connection, so every browser connection inherits TCP_NODELAY.
    """
    disable_nagle()
    yield

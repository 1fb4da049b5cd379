"""TCP_NODELAY on the app server's sockets (see sdaudit/serving.py for the Streamlit bug it works around)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from sdaudit.serving import disable_nagle

ROOT = Path(__file__).resolve().parents[1]


def nodelay(sock: socket.socket) -> bool:
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


def listener_as_streamlit_binds_it() -> socket.socket:
    """A listening socket made like Streamlit 1.67's: family only, so ``proto`` stays 0."""
    sock = socket.socket(family=socket.AF_INET)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def still_carries_data(sender: socket.socket, receiver: socket.socket) -> bool:
    """The pair still works: disable_nagle closed only its own second handles, never a socket."""
    sender.sendall(b"click")
    return receiver.recv(16) == b"click"


def test_nagle_is_turned_off_on_open_sockets_and_on_those_accepted_later():
    with contextlib.ExitStack() as opened:
        listener = opened.enter_context(listener_as_streamlit_binds_it())
        browser = opened.enter_context(socket.create_connection(listener.getsockname()))
        server_side = opened.enter_context(listener.accept()[0])
        unix_ends = [opened.enter_context(end) for end in socket.socketpair(socket.AF_UNIX)]
        assert listener.proto == 0 and not nodelay(listener) and not nodelay(server_side)

        changed = disable_nagle()

        assert changed >= 3  # the listener, the accepted socket and the browser's end
        assert nodelay(listener) and nodelay(server_side) and nodelay(browser)
        assert still_carries_data(browser, server_side) and still_carries_data(*unix_ends)
        later = opened.enter_context(socket.create_connection(listener.getsockname()))
        later_server_side = opened.enter_context(listener.accept()[0])
        assert nodelay(later_server_side)  # inherited from the listener
        assert disable_nagle() == 1  # only the later browser end was left to change
        assert disable_nagle() == 0
        assert still_carries_data(later, later_server_side)


def test_the_app_server_turns_nagle_off_when_it_starts():
    """streamlit_app.py's st.App runs sdaudit's lifespan: it is started here the way Streamlit
    starts it, in a fresh process (an st.App pins process-wide settings), over a listener made
    like Streamlit's; a browser connecting afterwards gets an accepted socket without Nagle."""
    code = textwrap.dedent(f"""
        import asyncio, socket, sys
        sys.path.insert(0, {str(ROOT)!r})
        listener = socket.socket(family=socket.AF_INET)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        from streamlit_app import app

        async def start_then_connect():
            async with app.lifespan()(app):
                browser = socket.create_connection(listener.getsockname())
                server_side = listener.accept()[0]
                print(listener.proto, bool(server_side.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)))

        asyncio.run(start_then_connect())
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[-2] == "0 True"

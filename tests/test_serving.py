"""TCP_NODELAY on the app server's sockets (see sdaudit/serving.py for the Streamlit bug it works around)."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

from streamlit.testing.v1 import AppTest

from sdaudit.serving import disable_nagle

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


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


def test_the_app_turns_nagle_off_for_the_server_it_runs_in(app_home):
    with listener_as_streamlit_binds_it() as listener, socket.create_connection(listener.getsockname()), \
            listener.accept()[0] as server_side:
        AppTest.from_file(APP, default_timeout=60).run()

        assert nodelay(listener) and nodelay(server_side)

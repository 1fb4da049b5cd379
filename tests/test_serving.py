"""TCP_NODELAY on the app server's sockets (see sdaudit/serving.py for the Streamlit bug it works around)."""

from __future__ import annotations

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


def test_nagle_is_turned_off_on_open_sockets_and_on_those_accepted_later():
    with listener_as_streamlit_binds_it() as listener, socket.socket(socket.AF_UNIX) as unix_socket:
        browser = socket.create_connection(listener.getsockname())
        server_side, _ = listener.accept()
        assert listener.proto == 0 and not nodelay(listener) and not nodelay(server_side)

        changed = disable_nagle()

        assert changed >= 3  # the listener, the accepted socket and the browser's end
        assert nodelay(listener) and nodelay(server_side) and nodelay(browser)
        assert unix_socket.fileno() >= 0  # a socket of another family is left alone, still open
        later = socket.create_connection(listener.getsockname())
        later_server_side, _ = listener.accept()
        assert nodelay(later_server_side)  # inherited from the listener
        assert disable_nagle() == 1  # only the later browser end was left to change
        assert disable_nagle() == 0
        for sock in (browser, server_side, later, later_server_side):
            sock.close()


def test_the_app_turns_nagle_off_for_the_server_it_runs_in(app_home):
    with listener_as_streamlit_binds_it() as listener:
        browser = socket.create_connection(listener.getsockname())
        server_side, _ = listener.accept()

        AppTest.from_file(APP, default_timeout=60).run()

        assert nodelay(listener) and nodelay(server_side)
        browser.close()
        server_side.close()

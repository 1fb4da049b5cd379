"""The admin gate holds: a process-wide limit on wrong passwords across sessions, a lockout that
refuses even the right password, signed expiring tokens that keep a browser unlocked, and raters
who cannot create studies."""

from __future__ import annotations

import threading

from helpers import open_page
from streamlit.testing.v1 import AppTest

from sdaudit.roles import LOCKOUT_S, MAX_WRONG, TOKEN_S, WINDOW_S, WRONG_PASSWORD, AdminGate

LOCKED_PREFIX = "Too many wrong admin passwords on this server"


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_four_sessions_at_once_get_at_most_five_wrong_tries_then_a_lockout():
    clock = Clock()
    gate = AdminGate("s3cret", clock=clock)
    answers: list[str] = []
    start = threading.Barrier(4)

    def session() -> None:
        start.wait()
        for _ in range(8):
            answers.append(gate.check("guess").message)

    threads = [threading.Thread(target=session) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 32
    assert answers.count(WRONG_PASSWORD) == MAX_WRONG - 1, "the fifth wrong password starts the lockout"
    assert all(answer.startswith(LOCKED_PREFIX) for answer in answers if answer != WRONG_PASSWORD)
    refused = gate.check("s3cret")
    assert not refused.unlocked and refused.message == (
        "Too many wrong admin passwords on this server: every password is refused until 13:47:40 UTC (in 60 s). "
        "Try again then.")
    clock.now += LOCKOUT_S - 1
    assert gate.check("s3cret").message.endswith("(in 1 s). Try again then.")
    clock.now += 1
    assert gate.check("s3cret").unlocked


def test_wrong_passwords_spread_over_minutes_do_not_lock_out():
    clock = Clock()
    gate = AdminGate("s3cret", clock=clock)
    for _ in range(3):
        assert [gate.check("guess").message for _ in range(MAX_WRONG - 1)] == [WRONG_PASSWORD] * (MAX_WRONG - 1)
        clock.now += WINDOW_S
    assert gate.check("s3cret").unlocked


def test_without_a_password_the_gate_is_open():
    gate = AdminGate("")
    assert not gate.required and gate.check("anything").unlocked and gate.token_valid(None)


def test_tokens_are_signed_expire_and_belong_to_one_process():
    clock = Clock()
    gate = AdminGate("s3cret", clock=clock)
    token = gate.token()
    expiry, signature = token.split(".")
    assert gate.token_valid(token) and int(expiry) == clock.now + TOKEN_S
    assert "s3cret" not in token
    forged_expiry = f"{int(expiry) + 10**6}.{signature}"
    flipped = f"{expiry}.{signature[:-1]}{'0' if signature[-1] != '0' else '1'}"
    for bad in (forged_expiry, flipped, f"{expiry}.", signature, "", None, "1.2.3", f"-{token}"):
        assert not gate.token_valid(bad), bad
    assert not AdminGate("s3cret", clock=clock).token_valid(token), "another process (a restart) does not know it"
    clock.now += TOKEN_S - 1
    assert gate.token_valid(token)
    clock.now += 1
    assert not gate.token_valid(token), "expired"


# -- in the app --------------------------------------------------------------------------------------


def try_password(at: AppTest, password: str) -> list[str]:
    next(box for box in at.text_input if box.label == "Admin password").input(password)
    next(button for button in at.button if button.label == "Unlock").click().run()
    assert not at.exception, at.exception
    return [error.value for error in at.error]


def test_four_app_sessions_share_one_limit(locked):
    sessions = [open_page("runs") for _ in range(4)]
    answers = [answer for _ in range(2) for at in sessions for answer in try_password(at, "guess")]
    assert answers[: MAX_WRONG - 1] == [WRONG_PASSWORD] * (MAX_WRONG - 1)
    assert all(answer.startswith(LOCKED_PREFIX) for answer in answers[MAX_WRONG - 1:])
    fifth = open_page("runs")
    assert try_password(fifth, "s3cret")[0].startswith(LOCKED_PREFIX), "the right password waits too"
    assert not fifth.get("file_uploader")


def test_unlocking_survives_a_reload_and_a_tampered_token_does_not(locked):
    at = open_page("runs")
    assert try_password(at, "s3cret") == []
    token = at.query_params["admin"]
    token = token[0] if isinstance(token, list) else token
    assert at.get("file_uploader") and "s3cret" not in token
    reloaded = open_page("runs", query={"admin": token})  # a new session, as a browser reload makes
    assert reloaded.get("file_uploader") and not any(box.label == "Admin password" for box in reloaded.text_input)
    expiry, signature = token.split(".")
    tampered = open_page("runs", query={"admin": f"{int(expiry) + 3600}.{signature}"})
    assert not tampered.get("file_uploader") and any(box.label == "Admin password" for box in tampered.text_input)
    assert "admin" not in tampered.query_params


def test_raters_cannot_create_studies_when_a_password_is_set(locked):
    at = open_page("runs")
    assert not any(box.label == "Name of the new study" for box in at.text_input)
    try_password(at, "s3cret")
    assert any(box.label == "Name of the new study" for box in at.text_input)

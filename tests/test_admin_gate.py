"""The admin password gate holds without being a switch anyone can throw: wrong passwords are
limited per source (one browser session), a source's lockout refuses even the right password there
and nowhere else, an unlocked session keeps a signed, expiring token in its server-side state only
(never in the address), and raters cannot create studies."""

from __future__ import annotations

import threading

from helpers import PAGES, open_page
from streamlit.testing.v1 import AppTest

from sdaudit.roles import LOCKOUT_S, MAX_WRONG, SOURCES_KEPT, TOKEN_S, WINDOW_S, WRONG_PASSWORD, AdminGate

LOCKED_PREFIX = "Too many wrong admin passwords from this browser"


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_four_threads_of_one_source_get_at_most_five_wrong_tries_then_a_lockout():
    clock = Clock()
    gate = AdminGate("s3cret", clock=clock)
    answers: list[str] = []
    start = threading.Barrier(4)

    def session() -> None:
        start.wait()
        for _ in range(8):
            answers.append(gate.check("guess", source="attacker").message)

    threads = [threading.Thread(target=session) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 32
    assert answers.count(WRONG_PASSWORD) == MAX_WRONG - 1, "the fifth wrong password starts the lockout"
    assert all(answer.startswith(LOCKED_PREFIX) for answer in answers if answer != WRONG_PASSWORD)
    refused = gate.check("s3cret", source="attacker")
    assert not refused.unlocked and refused.message == (
        "Too many wrong admin passwords from this browser: the password is refused here until 13:47:40 UTC "
        "(in 60 s). Try again then.")
    clock.now += LOCKOUT_S - 1
    assert gate.check("s3cret", source="attacker").message.endswith("(in 1 s). Try again then.")
    clock.now += 1
    assert gate.check("s3cret", source="attacker").unlocked


def test_a_locked_out_source_never_locks_the_admin_out():
    clock = Clock()
    gate = AdminGate("s3cret", clock=clock)
    for attacker in ("attacker-1", "attacker-2", "attacker-3"):
        answers = [gate.check("guess", source=attacker).message for _ in range(MAX_WRONG + 3)]
        assert answers[-1].startswith(LOCKED_PREFIX)
    assert gate.check("s3cret", source="admin").unlocked, "the admin's own browser is untouched"
    assert [gate.check("guess", source="admin").message for _ in range(MAX_WRONG - 1)] == [WRONG_PASSWORD] * (
        MAX_WRONG - 1), "and keeps its own full count of tries"
    assert not gate.check("s3cret", source="attacker-1").unlocked


def test_wrong_passwords_spread_over_minutes_do_not_lock_out():
    clock = Clock()
    gate = AdminGate("s3cret", clock=clock)
    for _ in range(3):
        assert [gate.check("guess", source="a").message for _ in range(MAX_WRONG - 1)] == (
            [WRONG_PASSWORD] * (MAX_WRONG - 1))
        clock.now += WINDOW_S
    assert gate.check("s3cret", source="a").unlocked


def test_the_gate_remembers_a_bounded_number_of_sources():
    gate = AdminGate("s3cret", clock=Clock())
    for _ in range(MAX_WRONG):
        gate.check("guess", source="first")
    assert gate.check("s3cret", source="first").message.startswith(LOCKED_PREFIX)
    for index in range(SOURCES_KEPT):
        gate.check("guess", source=f"other-{index}")
    assert gate.check("s3cret", source="first").unlocked, "the oldest quiet source was forgotten"


def test_without_a_password_the_gate_is_open():
    gate = AdminGate("")
    assert not gate.required and gate.check("anything", source="a").unlocked and gate.token_valid(None)


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


def test_wrong_passwords_in_one_session_never_lock_another(locked):
    attacker = open_page("runs")
    answers = [answer for _ in range(MAX_WRONG + 2) for answer in try_password(attacker, "guess")]
    assert answers[: MAX_WRONG - 1] == [WRONG_PASSWORD] * (MAX_WRONG - 1)
    assert all(answer.startswith(LOCKED_PREFIX) for answer in answers[MAX_WRONG - 1:])
    assert try_password(attacker, "s3cret")[0].startswith(LOCKED_PREFIX), "the right password waits there"
    assert not attacker.get("file_uploader")
    admin = open_page("runs")
    assert try_password(admin, "s3cret") == [] and admin.get("file_uploader"), "another browser unlocks at once"


def test_unlocking_stays_out_of_the_address_and_an_old_token_link_unlocks_nothing(locked):
    at = open_page("runs")
    assert try_password(at, "s3cret") == []
    assert at.get("file_uploader") and "admin" not in at.query_params
    token = at.session_state["admin_token"]
    assert "s3cret" not in token
    at.switch_page(str(PAGES / "generate.py")).run()
    assert [b for b in at.button if b.label == "Generate"], "the session stays unlocked across pages"
    linked = open_page("runs", query={"admin": token})  # the removed ?admin=TOKEN unlock: a reload asks again
    assert not linked.get("file_uploader") and any(box.label == "Admin password" for box in linked.text_input)


def test_raters_cannot_create_studies_when_a_password_is_set(locked):
    at = open_page("runs")
    assert not any(box.label == "Name of the new study" for box in at.text_input)
    try_password(at, "s3cret")
    assert any(box.label == "Name of the new study" for box in at.text_input)

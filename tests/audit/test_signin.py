"""``--login-script``: which form is submitted, with which fields — read like a browser would, never more."""

from __future__ import annotations

import httpx

from jarmor.audit import AuditClient, Verdict, run_audit
from jarmor.audit.signin import LoginScript, fill_form
from jarmor.jose import generate_jwk

from .lax_server import ISSUER, LaxServer

SCRIPT = LoginScript(fields={"username": "alice", "password": "pw"})


def test_the_first_post_form_is_filled_like_a_browser() -> None:
    page = ('<form action="/find"><input name="q"></form>'
            '<form method="POST" action="signin?x=1"><input type="hidden" name="csrf" value="t">'
            '<input name="username" value="prefilled"><input type="password" name="password">'
            '<input type="checkbox" name="remember" checked><input type="checkbox" name="spam">'
            '<button type="button" name="show" value="1">show</button>'
            '<button name="go" value="first">Go</button><button name="go2" value="second">Other</button></form>'
            '<form method="post" action="/other"><input name="username"></form>')
    action, data = fill_form(page, "https://as.example/login/1", SCRIPT) or ("", {})
    assert action == "https://as.example/login/signin?x=1"
    assert data == {"csrf": "t", "username": "alice", "password": "pw", "remember": "on", "go": "first"}


def test_a_scripted_button_wins_and_pages_without_a_post_form_are_left_alone() -> None:
    page = ('<form method="post" action="/consent"><input type="hidden" name="csrf" value="t">'
            '<button name="decision" value="approve">Allow</button>'
            '<button name="decision" value="deny">Deny</button></form>')
    script = LoginScript(fields={"decision": "deny", "password": "never sent"})
    assert fill_form(page, "https://as.example/a", script) == ("https://as.example/consent",
                                                               {"csrf": "t", "decision": "deny"})
    assert fill_form('<form action="/search"><input name="username"></form>', "https://as.example/", SCRIPT) is None
    assert fill_form("<p>signed out</p>", "https://as.example/", SCRIPT) is None


def test_a_form_posting_to_another_origin_is_never_submitted() -> None:
    class Elsewhere(LaxServer):
        def _login(self, request: httpx.Request, ref: str) -> httpx.Response:
            self.logins.append({"method": request.method})
            return httpx.Response(200, html='<form method="post" action="https://phish.example/steal">'
                                            '<input name="username"><input name="password"></form>')

    server = Elsewhere(interaction_host="lax.example", login_form=True)
    c = AuditClient(client_id="c1", redirect_uri="https://rp.example/cb", scope="openid",
                    auth_method="private_key_jwt", signing_key=generate_jwk("ES256"), signing_alg="ES256")
    with httpx.Client(transport=httpx.MockTransport(server)) as http:
        report = run_audit(ISSUER, [c], http_client=http, rate=1e6, login_script=SCRIPT,
                           only=frozenset({"state_integrity"}))
    assert report.findings[0].verdict is Verdict.NOT_RUN
    assert set(server.hosts) == {"lax.example"} and {"method": "POST"} not in server.logins

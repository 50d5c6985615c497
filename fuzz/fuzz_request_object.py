#!/usr/bin/env python3
"""Fuzz target: request objects through the whole authorization-endpoint and PAR check pipelines.

The input is a request object (optionally followed by a newline and extra outer query parameters). It runs
through ``AUTHORIZATION_ENDPOINT`` and ``PAR_ENDPOINT`` (decrypt, verify, claim checks, tier policy,
redirect URI, PKCE, replay mark) on a fresh in-memory store with the clock fixed at the seeds' ``iat``, and
any error is rendered as the endpoint would render it. Findings: an exception other than ``OAuthError``;
an error redirected to a URI the client did not register (RFC 6749 §4.1.2.1); a success that is not a
well-formed, fully validated request.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from instrument import instrumented

with instrumented(__name__, ["jarmor", "joserfc"]):
    from harness import CLIENT_ID, Finding, client, environment, fuzz_main, run, text

    from jarmor.protocol import errors
    from jarmor.protocol.authorization import (
        AUTHORIZATION_ENDPOINT,
        PAR_ENDPOINT,
        AuthorizationRequest,
        AuthorizationState,
        run_checks,
    )
    from jarmor.protocol.params import parse_parameters
    from jarmor.protocol.responses import error_response
    from jarmor.protocol.vocabulary import RESPONSE_MODES

_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")


def _outer(data: bytes) -> dict[str, str]:
    token, _, extra = text(data).partition("\n")
    outer: dict[str, str] = {}
    if extra:
        try:
            outer = parse_parameters(extra)
        except errors.OAuthError:
            outer = {}
    outer["client_id"] = CLIENT_ID
    outer["request"] = token
    return outer


async def _one(outer: dict[str, str], endpoint: str) -> None:
    env = environment()
    registered = client()
    st = AuthorizationState(env=env, outer=dict(outer), endpoint=endpoint, now=env.now())
    if endpoint == "par":
        st.outer.pop("request_uri", None)
        st.client = registered
        steps = PAR_ENDPOINT
    else:
        steps = AUTHORIZATION_ENDPOINT
    try:
        req = await run_checks(steps, st)
    except errors.OAuthError as err:
        target = err.target
        if target is not None:
            if target.redirect_uri not in registered.redirect_uris:
                raise Finding(f"error redirected to an unregistered URI {target.redirect_uri!r}") from err
            if target.response_mode not in RESPONSE_MODES or target.response_mode == "jwt":
                raise Finding(f"unresolved response mode {target.response_mode!r}") from err
            if target.state is not None and not isinstance(target.state, str):
                raise Finding("non-string state in an error target") from err
        await error_response(env, registered, err, tier=st.response_tier())
        return
    if req.redirect_uri not in registered.redirect_uris or req.response_type != "code":
        raise Finding(f"accepted an unverified request: {req!r}")
    if req.code_challenge_method != "S256" or not _CHALLENGE.fullmatch(req.code_challenge):
        raise Finding("accepted a request without S256 PKCE")
    if AuthorizationRequest.from_json(req.to_json()).to_json() != req.to_json():
        raise Finding("the validated request does not survive its own serialisation")


def test_one_input(data: bytes) -> None:
    outer = _outer(data)
    run(_one(outer, "authorization"))
    run(_one(outer, "par"))


if __name__ == "__main__":
    fuzz_main(test_one_input)

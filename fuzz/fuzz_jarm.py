#!/usr/bin/env python3
"""Fuzz target: the client library's callback handling — JARM (JWS and JWE) and plain responses.

A ``ClientCore`` with cached metadata and server keys holds one pending flow per response mode (the state
names the mode). The input is the callback as the redirect delivers it (URL, ``#fragment``, ``?query`` or
a form body); seeds are valid responses for each flow. Findings: an exception other than ``ClientError``;
an accepted response whose code did not come from a verified JWT (JARM modes) or whose state is not the
flow's.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from instrument import instrumented

with instrumented(__name__, ["jarmor", "joserfc"]):
    from harness import (
        CLIENT_ID,
        ISSUER,
        JARM_FLOW_MODES,
        NOW,
        RP_REDIRECT,
        Finding,
        client_core,
        flow_state,
        fuzz_main,
        jwks_body,
        text,
    )

    from jarmor.client.errors import ClientError
    from jarmor.client.exchange import HttpResponse
    from jarmor.client.models import FlowState

CORES = {False: client_core(), True: client_core(encrypted=True)}


def _reset(core: object) -> None:
    store = core.store  # type: ignore[attr-defined]
    for mode in JARM_FLOW_MODES:
        store.put(
            FlowState(
                issuer=ISSUER,
                client_id=CLIENT_ID,
                state=flow_state(mode),
                nonce=None,
                code_verifier="v" * 43,
                redirect_uri=RP_REDIRECT,
                response_mode=mode,
                scope="profile",
                created_at=NOW,
                expires_at=NOW + 600,
            )
        )


def test_one_input(data: bytes) -> None:
    encrypted = data[:1] == b"E"
    core = CORES[encrypted]
    _reset(core)
    callback = text(data[1:] if encrypted else data)
    # the application passes its session's state; the fuzzer's session is whichever flow the input names
    states = [flow_state(m) for m in JARM_FLOW_MODES]
    session = next((st for st in states if st in callback), states[0])
    steps = core.handle_callback(callback, expected_state=session)
    try:
        request = next(steps)
        while True:  # only an unknown kid makes the core ask for the JWKS again
            if request.hop != "jwks":
                raise Finding(f"callback handling made a {request.hop} request")
            request = steps.send(HttpResponse(200, {"content-type": "application/json"}, jwks_body()))
    except StopIteration as done:
        result = done.value
    except ClientError:
        return
    if result.flow.state != session:
        raise Finding("accepted a response for a flow other than the session's")
    if result.response_mode.endswith("jwt") and result.claims.get("code") != result.code:
        raise Finding("a JARM flow returned a code that is not the verified JWT's")
    if not isinstance(result.code, str) or not result.code:
        raise Finding("empty or non-string code accepted")


if __name__ == "__main__":
    fuzz_main(test_one_input)

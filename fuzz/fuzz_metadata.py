#!/usr/bin/env python3
"""Fuzz target: dynamic-registration metadata — ``parse_metadata`` (strict JSON) then
``validate_client_metadata`` then ``Client.from_metadata``.

Findings: an exception other than ``OAuthError``; normalised metadata that does not validate again to
itself (what is stored must be what would be accepted), or that the client model cannot load.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from instrument import instrumented

with instrumented(__name__, ["jarmor"]):
    from harness import Finding, capabilities, fuzz_main

    from jarmor.protocol.clients import Client, validate_client_metadata
    from jarmor.protocol.errors import OAuthError
    from jarmor.protocol.policy import Policy
    from jarmor.protocol.registration import parse_metadata

POLICY = Policy()
SERVER = capabilities()


def test_one_input(data: bytes) -> None:
    try:
        meta = parse_metadata(data)
        normalized = validate_client_metadata(meta, policy=POLICY, server=SERVER)
    except OAuthError as err:
        if err.error not in ("invalid_client_metadata", "invalid_redirect_uri") or err.status != 400:
            raise Finding(f"unexpected error {err.error} {err.status}") from err
        return
    again = validate_client_metadata(normalized, policy=POLICY, server=SERVER)
    if again != normalized:
        raise Finding(f"normalisation is not idempotent: {normalized!r} -> {again!r}")
    Client.from_metadata("fuzz-client", normalized)


if __name__ == "__main__":
    fuzz_main(test_one_input)

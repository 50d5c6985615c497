#!/usr/bin/env python3
"""Fuzz target: the JOSE entry points — ``peek_header``, ``peek_claims``, ``verify_jws``, ``decrypt_jwe``.

A fixed key set (``keys.json``) verifies and decrypts; the seed corpus holds valid JWS and JWE tokens made
with it, so mutations reach signature checking, claims parsing and every decryption step. Any exception
other than ``JoseError`` escaping, or a success that breaks the layer's promises, is a finding.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from instrument import instrumented

with instrumented(__name__, ["jarmor", "joserfc"]):
    from harness import Finding, fuzz_main, private, public, text

    from jarmor.jose import (
        CONTENT_ENCRYPTION_ALGS,
        KEY_MANAGEMENT_ALGS,
        SIGNING_ALGS,
        JoseError,
        decrypt_jwe,
        peek_claims,
        peek_header,
        verify_jws,
    )

VERIFY = public("c1_es256", "c1_ps256", "c1_ed25519", "as_es256", "as_ps256")
DECRYPT = private("as_enc_rsa", "as_enc_p256", "c1_enc_p256")
REFUSED_HEADER = ("crit", "b64", "zip", "jwk", "jku", "x5u", "x5c")


def test_one_input(data: bytes) -> None:
    token: object = data if data[:1] == b"\x00" else text(data)  # a few inputs as bytes: must be refused
    for peek in (peek_header, peek_claims):
        try:
            value = peek(token)
        except JoseError:
            pass
        else:
            if not isinstance(value, dict):
                raise Finding(f"{peek.__name__} returned {type(value).__name__}")
    try:
        verified = verify_jws(token, VERIFY, algorithms=SIGNING_ALGS)
    except JoseError:
        pass
    else:
        alg = verified.header.get("alg")
        if alg not in SIGNING_ALGS or not isinstance(verified.claims, dict):
            raise Finding(f"verify_jws accepted alg {alg!r}")
        if any(m in verified.header for m in REFUSED_HEADER[:3]):
            raise Finding("verify_jws accepted a crit/b64/zip header")
        if not verified.key.fits_signing_alg(alg):
            raise Finding("verify_jws used a key not bound to the alg")
    with contextlib.suppress(JoseError):
        verify_jws(token, VERIFY, algorithms=("ES256",), typ=("oauth-authz-req+jwt",), typ_required=True)
    try:
        jwe = decrypt_jwe(token, DECRYPT, algorithms=KEY_MANAGEMENT_ALGS, encryptions=CONTENT_ENCRYPTION_ALGS)
    except JoseError:
        pass
    else:
        if not isinstance(jwe.plaintext, bytes) or "zip" in jwe.header:
            raise Finding("decrypt_jwe returned a non-bytes plaintext or honoured zip")


if __name__ == "__main__":
    fuzz_main(test_one_input)

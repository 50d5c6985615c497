"""The direct ``cryptography`` signature path (``jarmor.jose.signatures``) and its per-key cache.

The direct path must sign what the JOSE library verifies and verify what it signs, for every algorithm, and
refuse what it refuses; each key is prepared once per algorithm, and a rotated or removed key is never
served from a stale preparation. The DPoP ``jwk`` import cache returns the key an import returns, per
distinct ``jwk``.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc.jwk import ECKey

from jarmor.jose import (
    BadSignature,
    InvalidKey,
    Jwk,
    JwkSet,
    KeyNotFound,
    b64url_decode,
    embedded,
    generate_jwk,
    keys,
    sign_jws,
    sign_jws_embedded_jwk,
    verify_jws,
    verify_jws_embedded_jwk,
)
from jarmor.jose.algorithms import SIGNING_ALGS
from jarmor.jose.signatures import SIGNERS, build_signature_ops
from jarmor.jose.testing import KeyRing, refused, sign_raw
from jarmor.jose.tokens import verify_signature

KEY_FOR = {
    "ES256": "c1_es256", "ES384": "c1_es384", "ES512": "c1_es512", "PS256": "c1_rsa", "PS384": "c1_rsa",
    "PS512": "c1_rsa", "RS256": "c1_rsa", "EdDSA": "c1_ed25519", "Ed25519": "c1_ed25519",
}
MESSAGE = b"eyJhbGciOiJFUzI1NiJ9.eyJhIjoxfQ"


def test_every_signing_alg_covered() -> None:
    assert set(KEY_FOR) == set(SIGNING_ALGS)


@pytest.mark.parametrize("alg", sorted(SIGNING_ALGS))
def test_direct_path_and_jose_library_agree(ring: KeyRing, alg: str) -> None:
    key: Jwk = getattr(ring, KEY_FOR[alg])
    ops = build_signature_ops(key.key, alg)
    assert ops is not None and ops.sign is not None and ops.verify is not None
    model = SIGNERS[alg]
    ours = ops.sign(MESSAGE)
    theirs = model.sign(MESSAGE, key.key)
    assert len(ours) == len(theirs) == ops.length
    assert model.verify(MESSAGE, ours, key.key) is True  # the library verifies what we sign
    assert ops.verify(MESSAGE, theirs) is True  # and we verify what it signs
    if alg in ("RS256", "EdDSA", "Ed25519"):  # deterministic schemes: the very same bytes
        assert ours == theirs
    for bad_message, bad_signature in (
        (MESSAGE + b"x", ours),
        (MESSAGE, ours[:-1] + bytes([ours[-1] ^ 1])),
        (MESSAGE, bytes(len(ours))),
        (MESSAGE, b"\xff" * len(ours)),
    ):
        assert ops.verify(bad_message, bad_signature) is False
        assert model.verify(bad_message, bad_signature, key.key) is False


def test_ecdsa_r_s_of_fixed_width_only(ring: KeyRing) -> None:
    """RFC 7518 §3.4: R‖S, each of the curve's width; a DER signature of any length is refused."""
    key = ring.c1_es256
    ops = key.signature_ops("ES256")
    assert ops is not None and ops.sign is not None and ops.verify is not None
    raw = ops.sign(MESSAGE)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    assert ops.verify(MESSAGE, raw) is True
    assert ops.verify(MESSAGE, der) is False
    assert verify_signature(key, "ES256", MESSAGE, der) is False
    assert ops.verify(MESSAGE, raw + b"\x00") is False


def test_keys_the_jose_library_refuses_stay_refused() -> None:
    """A key object carrying its own ``key_ops`` (built outside ``import_jwk``): the library's checks, run once
    when the key is prepared, still decide, exactly as they did per call."""
    source = generate_jwk("ES256", kid="ops")
    verify_only = ECKey.import_key({**source.private_dict(), "key_ops": ["verify"]})
    key = Jwk(key=verify_only, kid="ops", kty="EC", crv="P-256", alg="ES256", use="sig", key_ops=None)
    ops = key.signature_ops("ES256")
    assert ops is not None and ops.sign is None and ops.verify is not None
    refused(KeyNotFound, sign_jws, {"a": 1}, key, "ES256", reason="key_mismatch")
    refused(KeyNotFound, sign_jws_embedded_jwk, {"a": 1}, key, "ES256", typ="dpop+jwt", reason="key_mismatch")
    token = sign_jws({"a": 1}, source, "ES256")
    assert verify_jws(token, JwkSet((key,)), algorithms=["ES256"]).claims == {"a": 1}

    enc_only = ECKey.import_key({**source.public_dict(), "use": "enc"})
    key = Jwk(key=enc_only, kid="ops", kty="EC", crv="P-256", alg="ES256", use="sig", key_ops=None)
    assert key.signature_ops("ES256") is None  # the library's check_key refuses a "use": "enc" key
    refused(BadSignature, verify_jws, token, JwkSet((key,)), algorithms=["ES256"])


def test_a_key_is_prepared_once_per_algorithm(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, str]] = []

    def counting(key: Any, alg: str) -> Any:
        calls.append((id(key), alg))
        return build_signature_ops(key, alg)

    monkeypatch.setattr(keys, "build_signature_ops", counting)
    signer = generate_jwk("ES256", kid="once")
    verifier = JwkSet.from_dict({"keys": [signer.public_dict()]})
    tokens = [sign_jws({"n": n}, signer, "ES256") for n in range(5)]
    for n, token in enumerate(tokens):
        assert verify_jws(token, verifier, algorithms=["ES256"]).claims == {"n": n}
    assert calls == [(id(signer.key), "ES256"), (id(verifier.keys[0].key), "ES256")]
    assert signer.signature_ops("ES256") is signer.signature_ops("ES256")


def test_rsa_key_prepared_per_algorithm(ring: KeyRing) -> None:
    key = ring.c1_rsa  # no alg: usable for PS* and RS256
    ps, rs = key.signature_ops("PS256"), key.signature_ops("RS256")
    assert ps is not None and rs is not None and ps is not rs
    assert key.signature_ops("PS256") is ps
    for alg in ("PS256", "RS256"):
        token = sign_jws({"a": alg}, key, alg)
        assert verify_jws(token, ring.public_set(key), algorithms=[alg]).claims == {"a": alg}
    token = sign_jws({"a": 1}, key, "PS256")  # a PS256 signature is not an RS256 one
    head, body, sig = token.split(".")
    assert verify_signature(key, "RS256", f"{head}.{body}".encode(), b64url_decode(sig)) is False


def test_rotated_key_is_not_served_from_a_stale_cache() -> None:
    """Same ``kid``, new key material: each set verifies with its own key only, caches warm or not."""
    old = generate_jwk("ES256", kid="rot")
    new = generate_jwk("ES256", kid="rot")
    old_set = JwkSet.from_dict({"keys": [old.public_dict()]})
    new_set = JwkSet.from_dict({"keys": [new.public_dict()]})
    by_old, by_new = sign_jws({"v": "old"}, old, "ES256"), sign_jws({"v": "new"}, new, "ES256")
    for _ in range(2):  # the second round runs on warm caches
        assert verify_jws(by_old, old_set, algorithms=["ES256"]).claims == {"v": "old"}
        assert verify_jws(by_new, new_set, algorithms=["ES256"]).claims == {"v": "new"}
        refused(BadSignature, verify_jws, by_old, new_set, algorithms=["ES256"])
        refused(BadSignature, verify_jws, by_new, old_set, algorithms=["ES256"])


def test_removed_key_is_not_served_from_a_stale_cache() -> None:
    kept, removed = generate_jwk("ES256", kid="kept"), generate_jwk("ES256", kid="gone")
    before = JwkSet.from_dict({"keys": [kept.public_dict(), removed.public_dict()]})
    token = sign_jws({"a": 1}, removed, "ES256")
    assert verify_jws(token, before, algorithms=["ES256"]).key.kid == "gone"  # its cache is warm now
    after = JwkSet(tuple(k for k in before if k.kid != "gone"))
    refused(KeyNotFound, verify_jws, token, after, algorithms=["ES256"], reason="unknown_kid")
    unnamed = sign_raw({"alg": "ES256"}, {"a": 1}, removed, "ES256")  # no kid: the remaining key is tried
    refused(BadSignature, verify_jws, unnamed, after, algorithms=["ES256"])


def test_thumbprint_computed_once_and_per_key() -> None:
    a, b = generate_jwk("ES256", kid="a"), generate_jwk("ES256", kid="b")
    assert a.thumbprint() is a.thumbprint()
    assert a.thumbprint() == str(a.key.thumbprint()) != b.thumbprint()


# --- the DPoP jwk import cache ------------------------------------------------------------------------


def test_embedded_jwk_import_kept_per_distinct_jwk() -> None:
    one, two = generate_jwk("ES256"), generate_jwk("ES256")
    jwk = {k: v for k, v in one.public_dict().items() if k not in ("kid", "alg", "use")}
    first = embedded._import_public(jwk)
    assert embedded._import_public(dict(reversed(list(jwk.items())))) is first  # member order is no matter
    assert first.thumbprint() == one.thumbprint()
    other = {k: v for k, v in two.public_dict().items() if k not in ("kid", "alg", "use")}
    assert embedded._import_public(other).thumbprint() == two.thumbprint()
    with_kid = embedded._import_public({**jwk, "kid": "named"})
    assert with_kid is not first and with_kid.kid == "named"
    for _ in range(2):  # refusals are never kept
        refused(InvalidKey, embedded._import_public, {**jwk, "d": one.private_dict()["d"]}, reason="private_key")
        refused(InvalidKey, embedded._import_public, {**jwk, "crv": "P-384"})
    assert embedded._import_public({**jwk, "big": 2**70}).thumbprint() == one.thumbprint()  # not cacheable


def test_embedded_proofs_verify_with_their_own_key_only() -> None:
    one, two = generate_jwk("ES256"), generate_jwk("ES256")
    proof_one = sign_jws_embedded_jwk({"n": 1}, one, "ES256", typ="dpop+jwt")
    proof_two = sign_jws_embedded_jwk({"n": 2}, two, "ES256", typ="dpop+jwt")
    for _ in range(2):
        assert verify_jws_embedded_jwk(proof_one, algorithms=["ES256"]).key.thumbprint() == one.thumbprint()
        assert verify_jws_embedded_jwk(proof_two, algorithms=["ES256"]).key.thumbprint() == two.thumbprint()
    head_two = proof_two.split(".")[0]  # key two's header over key one's claims and signature
    _, body, sig = proof_one.split(".")
    refused(BadSignature, verify_jws_embedded_jwk, f"{head_two}.{body}.{sig}", algorithms=["ES256"])

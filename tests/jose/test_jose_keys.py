"""Key import, key binding and kid selection (RFC 7517, RFC 7518 §6, RFC 8037, RFC 8725 §3.1/§3.5).

Catalog A12 (key/alg/curve binding), A13 (weak keys), and the JwkSet ``kid`` rules of RFC 7515 §4.1.4 /
RFC 9101 §6.2.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc.jwk import ECKey, OKPKey, RSAKey

from jarmor.jose import (
    InvalidKey,
    Jwk,
    JwkSet,
    KeyNotFound,
    MalformedToken,
    b64url_decode,
    b64url_encode,
    generate_jwk,
    import_jwk,
)
from jarmor.jose.keys import MAX_KEYS_PER_SET
from jarmor.jose.testing import KeyRing, refused


def _public(jwk: Jwk, **changes: Any) -> dict[str, Any]:
    data = jwk.public_dict()
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def _private(jwk: Jwk, **changes: Any) -> dict[str, Any]:
    data = jwk.private_dict()
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


pytestmark = pytest.mark.filterwarnings("ignore:Key size should be")


def _rsa_dict(bits: int, **extra: Any) -> dict[str, Any]:
    key = RSAKey.import_key(rsa.generate_private_key(65537, bits))
    return {**key.as_dict(private=False), **extra}


# --- positive imports ----------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512", "PS256", "EdDSA", "ECDH-ES", "RSA-OAEP-256"])
def test_generated_keys_round_trip_through_public_and_private_import(alg: str) -> None:
    key = generate_jwk(alg, kid=f"k-{alg}")
    public = import_jwk(key.public_dict(), allow_private=False)
    private = import_jwk(key.private_dict(), allow_private=True)
    assert not public.is_private and private.is_private
    assert public.thumbprint() == key.thumbprint() == private.thumbprint()
    assert (public.kid, public.kty, public.crv, public.alg, public.use) == (
        key.kid,
        key.kty,
        key.crv,
        alg,
        key.use,
    )
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key.public_dict())


def test_kid_defaults_to_thumbprint(ring: KeyRing) -> None:
    data = _public(ring.c1_es256)
    del data["kid"]
    assert import_jwk(data, allow_private=False).kid == ring.c1_es256.thumbprint()
    assert import_jwk({**data, "kid": ""}, allow_private=False).kid == ring.c1_es256.thumbprint()


def test_unknown_and_certificate_members_are_ignored(ring: KeyRing) -> None:
    data = _public(ring.c1_es256, x5c=["MIIB"], x5t="abc", issuer="https://x", ext=True, key_ops=["verify"])
    key = import_jwk(data, allow_private=False)
    assert key.key_ops == frozenset({"verify"})
    assert "issuer" not in key.public_dict()


@pytest.mark.parametrize("crv", ["P-384", "P-521", "X25519"])
def test_generate_ecdh_curves(crv: str) -> None:
    key = generate_jwk("ECDH-ES+A128KW", crv=crv)
    assert key.crv == crv and key.use == "enc"


@pytest.mark.parametrize(
    ("alg", "crv"), [("ES256", "P-384"), ("ECDH-ES", "Ed25519"), ("ECDH-ES", "secp256k1"), ("HS256", None)]
)
def test_generate_refuses_bad_combinations(alg: str, crv: str | None) -> None:
    refused(InvalidKey, generate_jwk, alg, crv=crv)


# --- weak and unsupported keys (A13, weak keys at import) ----------------------------------------------


@pytest.mark.parametrize("bits", [1024, 2040])
def test_weak_rsa_refused_at_import(bits: int) -> None:
    refused(InvalidKey, import_jwk, _rsa_dict(bits), allow_private=False, reason="weak_key")
    refused(InvalidKey, JwkSet.from_dict, {"keys": [_rsa_dict(bits)]}, reason="weak_key")


@pytest.mark.parametrize("size", [64, 255, 8192 // 8 + 1, 4 * 8192 // 8])
def test_rsa_modulus_size_checked_before_import(size: int) -> None:
    """The size check reads ``n`` alone, so a 512-bit or 32768-bit modulus costs nothing to refuse."""
    n = b64url_encode(b"\xff" * size)
    refused(
        InvalidKey, import_jwk, {"kty": "RSA", "n": n, "e": "AQAB"}, allow_private=False, reason="weak_key"
    )


@pytest.mark.parametrize("e", [1, 2, 4, 65536, 2**257 + 1])
def test_bad_rsa_exponent_refused(e: int) -> None:
    data = _rsa_dict(2048)
    data["e"] = b64url_encode(e.to_bytes((e.bit_length() + 7) // 8, "big"))
    refused(InvalidKey, import_jwk, data, allow_private=False, reason="weak_key")


@pytest.mark.parametrize("bits", [1024, 2040])
def test_weak_rsa_cannot_be_injected_as_a_jwk_object(bits: int) -> None:
    """A13: a key that bypassed import (a store, a migration) is re-checked when the Jwk is built."""
    key = RSAKey.import_key(rsa.generate_private_key(65537, bits))
    refused(
        InvalidKey,
        Jwk,
        key=key,
        kid="weak",
        kty="RSA",
        crv=None,
        alg="PS256",
        use="sig",
        key_ops=None,
        reason="weak_key",
    )


def test_jwk_object_must_match_its_metadata(ring: KeyRing) -> None:
    p384 = ECKey.import_key(ec.generate_private_key(ec.SECP384R1()))
    for kwargs in (
        {"key": p384, "kty": "EC", "crv": "P-256", "alg": "ES256"},
        {"key": p384, "kty": "RSA", "crv": None, "alg": None},
        {"key": ring.c1_sig.key, "kty": "EC", "crv": "P-256", "alg": None},
        {"key": OKPKey.generate_key("X25519"), "kty": "OKP", "crv": "X25519", "alg": "EdDSA"},
        {"key": OKPKey.generate_key("Ed448"), "kty": "OKP", "crv": "Ed448", "alg": None},
        {"key": p384, "kty": "oct", "crv": None, "alg": None},
    ):
        refused(InvalidKey, Jwk, kid="k", use=None, key_ops=None, **kwargs)


@pytest.mark.parametrize(
    "data",
    [
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "oct", "k": ""},
        {"kty": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "EC ", "crv": "P-256"},
        {"crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": None},
        {"kty": ["EC"]},
        {"kty": "DSA"},
    ],
)
def test_unsupported_key_types_refused(data: dict[str, Any]) -> None:
    refused(InvalidKey, import_jwk, data, allow_private=True)
    refused(InvalidKey, import_jwk, data, allow_private=False)


def test_oct_key_in_a_public_set_refused() -> None:
    refused(InvalidKey, JwkSet.from_dict, {"keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}]})


@pytest.mark.parametrize(
    "jwk",
    [
        # secp256k1 (RFC 8812), brainpool, P-192, Ed448/X448, wrong spelling
        {"kty": "EC", "crv": "secp256k1", "x": "A" * 43, "y": "A" * 43},
        {"kty": "EC", "crv": "P-192", "x": "A" * 32, "y": "A" * 32},
        {"kty": "EC", "crv": "brainpoolP256r1", "x": "A" * 43, "y": "A" * 43},
        {"kty": "EC", "crv": "p-256", "x": "A" * 43, "y": "A" * 43},
        {"kty": "EC", "x": "A" * 43, "y": "A" * 43},
        {"kty": "OKP", "crv": "Ed448", "x": "A" * 76},
        {"kty": "OKP", "crv": "X448", "x": "A" * 75},
        {"kty": "OKP", "crv": "P-256", "x": "A" * 43},
        {"kty": "OKP", "x": "A" * 43},
    ],
)
def test_unknown_curves_refused(jwk: dict[str, Any]) -> None:
    refused(InvalidKey, import_jwk, jwk, allow_private=False, reason="unsupported_curve")


def test_real_secp256k1_key_refused() -> None:
    key = ECKey.import_key(ec.generate_private_key(ec.SECP256K1()))
    refused(
        InvalidKey, import_jwk, key.as_dict(private=False), allow_private=False, reason="unsupported_curve"
    )


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "oth", "k"])
def test_private_members_in_a_public_set_refused(ring: KeyRing, member: str) -> None:
    for key in (ring.c1_sig, ring.c1_es256, ring.c1_ed25519):
        data = _public(key, **{member: "AQAB"})
        refused(InvalidKey, import_jwk, data, allow_private=False, reason="private_key")
        refused(InvalidKey, JwkSet.from_dict, {"keys": [data]})


def test_private_keys_refused_in_default_set_import(ring: KeyRing) -> None:
    refused(InvalidKey, JwkSet.from_dict, {"keys": [ring.c1_es256.private_dict()]}, reason="private_key")
    assert JwkSet.from_dict({"keys": [ring.c1_es256.private_dict()]}, allow_private=True).keys[0].is_private


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("kid", 123),
        ("kid", ["a"]),
        ("alg", ["ES256"]),
        ("use", 1),
        ("crv", 256),
        ("key_ops", "verify"),
        ("key_ops", ["verify", 1]),
        ("key_ops", ["verify", "verify"]),
        ("x", 5),
        ("x", ""),
        ("y", None),
        ("x", "A" * 42 + "+"),
        ("x", "A" * 43 + "="),
    ],
)
def test_malformed_members_refused(ring: KeyRing, member: str, value: object) -> None:
    data = _public(ring.c1_es256)
    data[member] = value
    refused(InvalidKey, import_jwk, data, allow_private=False)


@pytest.mark.parametrize("kid", ["a" * 257, "a\x00b", "a\nb", "\x7f"])
def test_bad_kid_refused_at_import(ring: KeyRing, kid: str) -> None:
    refused(InvalidKey, import_jwk, _public(ring.c1_es256, kid=kid), allow_private=False, reason="bad_kid")


@pytest.mark.parametrize(
    "alg", ["HS256", "RS384", "RS512", "none", "RSA1_5", "PBES2-HS256+A128KW", "dir", "A128KW"]
)
def test_unsupported_key_alg_refused(ring: KeyRing, alg: str) -> None:
    refused(InvalidKey, import_jwk, _public(ring.c1_sig, alg=alg), allow_private=False, reason="alg")


@pytest.mark.parametrize(
    ("which", "alg"),
    [
        ("c1_es256", "ES384"),  # P-256 key labelled ES384
        ("c1_es384", "ES256"),
        ("c1_es512", "ES256"),
        ("c1_es256", "PS256"),
        ("c1_sig", "ES256"),
        ("c1_sig", "EdDSA"),
        ("c1_ed25519", "ECDH-ES"),  # Ed25519 is not an agreement curve
        ("enc_x25519", "EdDSA"),  # X25519 cannot sign
        ("enc_p256", "RSA-OAEP"),
        ("enc_rsa", "ECDH-ES"),
    ],
)
def test_alg_must_fit_key_type_and_curve(ring: KeyRing, which: str, alg: str) -> None:
    key: Jwk = getattr(ring, which)
    refused(InvalidKey, import_jwk, _public(key, alg=alg, use=None), allow_private=False, reason="alg")


@pytest.mark.parametrize(
    ("alg", "use", "key_ops"),
    [
        ("PS256", "enc", None),
        ("RSA-OAEP-256", "sig", None),
        (None, "sig", ["encrypt"]),
        (None, "enc", ["sign"]),
    ],
)
def test_use_alg_and_key_ops_must_agree(
    ring: KeyRing, alg: str | None, use: str, key_ops: list[str] | None
) -> None:
    data = _public(ring.c1_rsa, alg=alg, use=use, key_ops=key_ops)
    refused(InvalidKey, import_jwk, data, allow_private=False)


@pytest.mark.parametrize("use", ["signature", "SIG", "", "encryption"])
def test_unknown_use_refused(ring: KeyRing, use: str) -> None:
    refused(InvalidKey, import_jwk, _public(ring.c1_es256, use=use), allow_private=False)


# --- key material --------------------------------------------------------------------------------------


@pytest.mark.parametrize("member", ["x", "y"])
@pytest.mark.parametrize("delta", [-1, 1])
def test_ec_coordinates_must_have_curve_width(ring: KeyRing, member: str, delta: int) -> None:
    data = _public(ring.c1_es256)
    raw = b64url_decode(data[member])
    data[member] = b64url_encode(raw[1:] if delta < 0 else b"\x00" + raw)
    refused(InvalidKey, import_jwk, data, allow_private=False, reason="bad_member")


def test_ec_point_not_on_curve_refused(ring: KeyRing) -> None:
    zero = b64url_encode(bytes(32))
    refused(InvalidKey, import_jwk, {"kty": "EC", "crv": "P-256", "x": zero, "y": zero}, allow_private=False)
    data = _public(ring.c1_es256)
    y = bytearray(b64url_decode(data["y"]))
    y[-1] ^= 1
    refused(InvalidKey, import_jwk, {**data, "y": b64url_encode(bytes(y))}, allow_private=False)


def test_p384_point_labelled_p256_refused(ring: KeyRing) -> None:
    data = _public(ring.c1_es384, crv="P-256", alg=None)
    refused(InvalidKey, import_jwk, data, allow_private=False)


@pytest.mark.parametrize("length", [31, 33])
def test_okp_key_must_be_32_bytes(length: int) -> None:
    data = {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(b"\x01" * length)}
    refused(InvalidKey, import_jwk, data, allow_private=False, reason="bad_member")


def test_private_key_must_match_public_members(ring: KeyRing) -> None:
    other_ec = generate_jwk("ES256")
    other_ed = generate_jwk("EdDSA")
    other_rsa = ring.c2_sig
    for key, other in ((ring.c1_es256, other_ec), (ring.c1_ed25519, other_ed)):
        mixed = _private(key, d=other.private_dict()["d"])
        refused(InvalidKey, import_jwk, mixed, allow_private=True)
    mixed_rsa = _private(ring.c1_sig, p=other_rsa.private_dict()["p"])
    refused(InvalidKey, import_jwk, mixed_rsa, allow_private=True)


def test_private_members_without_d_refused(ring: KeyRing) -> None:
    data = _private(ring.c1_sig)
    del data["d"]
    refused(InvalidKey, import_jwk, data, allow_private=True, reason="bad_member")


def test_multi_prime_rsa_refused(ring: KeyRing) -> None:
    data = _private(ring.c1_sig, oth=[{"r": "AQAB", "d": "AQAB", "t": "AQAB"}])
    refused(InvalidKey, import_jwk, data, allow_private=True)


# --- key sets ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data", [None, [], {"keys": {}}, {"keys": None}, {"key": []}, {"keys": [1]}, {"keys": ["x"]}]
)
def test_malformed_sets_refused(data: object) -> None:
    refused(InvalidKey, JwkSet.from_dict, data)


def test_too_many_keys_refused(ring: KeyRing) -> None:
    one = _public(ring.c1_es256)
    keys = [{**one, "kid": f"k{i}"} for i in range(MAX_KEYS_PER_SET + 1)]
    refused(InvalidKey, JwkSet.from_dict, {"keys": keys}, reason="too_many_keys")
    assert len(JwkSet.from_dict({"keys": keys[:MAX_KEYS_PER_SET]})) == MAX_KEYS_PER_SET


def test_duplicate_kids_refused_when_they_could_name_the_same_operation(ring: KeyRing) -> None:
    a = _public(ring.c1_es256, kid="dup")
    b = _public(generate_jwk("ES256"), kid="dup")
    refused(InvalidKey, JwkSet.from_dict, {"keys": [a, b]}, reason="duplicate_kid")
    # use absent on one of them: both could sign
    bare = {k: v for k, v in b.items() if k not in ("use", "alg")}
    refused(InvalidKey, JwkSet.from_dict, {"keys": [a, bare]}, reason="duplicate_kid")
    # EdDSA and Ed25519 name the same algorithm
    e1 = _public(ring.c1_ed25519, kid="dup-ed", alg="EdDSA")
    e2 = _public(generate_jwk("EdDSA"), kid="dup-ed", alg="Ed25519")
    refused(InvalidKey, JwkSet.from_dict, {"keys": [e1, e2]}, reason="duplicate_kid")
    # Jwk objects assembled directly are checked too
    refused(InvalidKey, JwkSet, (ring.c1_sig, ring.atk_rsa), reason="duplicate_kid")


def test_same_kid_allowed_across_key_types_or_uses(ring: KeyRing) -> None:
    sig = _public(ring.c1_es256, kid="shared")
    enc = _public(ring.enc_p256, kid="shared")
    rsa_key = _public(ring.c1_sig, kid="shared")
    keys = JwkSet.from_dict({"keys": [sig, enc, rsa_key]})
    assert keys.select_verification_key("ES256", "shared").use == "sig"
    assert keys.select_encryption_key("ECDH-ES+A256KW", "shared").use == "enc"
    assert keys.select_verification_key("PS256", "shared").kty == "RSA"


def test_jwkset_holds_only_jwk() -> None:
    refused(InvalidKey, JwkSet, ({"kty": "EC"},), reason="bad_set")  # type: ignore[arg-type]


# --- kid selection rules ---------------------------------------------------------------------------------


def test_select_with_kid(ring: KeyRing) -> None:
    keys = ring.client1()
    assert keys.select_verification_key("ES256", "c1-es256").kid == "c1-es256"
    assert keys.select_verification_key("PS256", "c1-sig").kid == "c1-sig"
    assert keys.select_verification_key("RS256", "c1-rsa").kid == "c1-rsa"
    assert keys.select_verification_key("Ed25519", "c1-ed25519").kid == "c1-ed25519"


def test_select_without_kid_single_fitting_key(ring: KeyRing) -> None:
    keys = ring.client1()
    assert keys.select_verification_key("ES384", None).kid == "c1-es384"
    assert keys.select_verification_key("EdDSA", None).kid == "c1-ed25519"


def test_select_without_kid_several_keys(ring: KeyRing) -> None:
    keys = ring.client1()  # c1-sig (PS256) and c1-rsa (any RSA alg) both fit PS256
    refused(KeyNotFound, keys.select_verification_key, "PS256", None, reason="kid_required")


def test_select_without_kid_no_key(ring: KeyRing) -> None:
    keys = ring.public_set(ring.c1_es256)
    refused(KeyNotFound, keys.select_verification_key, "PS256", None, reason="key_not_found")
    refused(KeyNotFound, JwkSet().select_verification_key, "ES256", None, reason="key_not_found")


def test_select_unknown_kid(ring: KeyRing) -> None:
    keys = ring.client1()
    for kid in (
        "c2-sig",
        "nope",
        "C1-SIG",
        "c1-sig ",
        "../../../../dev/null",
        "' OR '1'='1",
        "http://169.254.169.254/",
    ):
        refused(KeyNotFound, keys.select_verification_key, "PS256", kid, reason="unknown_kid")


def test_select_kid_of_a_key_that_does_not_fit(ring: KeyRing) -> None:
    keys = ring.client1()
    refused(KeyNotFound, keys.select_verification_key, "ES256", "c1-sig", reason="key_mismatch")
    refused(KeyNotFound, keys.select_verification_key, "RS256", "c1-sig", reason="key_mismatch")
    refused(KeyNotFound, keys.select_verification_key, "ES256", "c1-es384", reason="key_mismatch")


@pytest.mark.parametrize("kid", [123, True, {"a": 1}, ["c1-sig"], "", "a" * 257, "a\x00b", "tab\there", 1.5])
def test_select_malformed_kid(ring: KeyRing, kid: object) -> None:
    refused(MalformedToken, ring.client1().select_verification_key, "PS256", kid, reason="bad_kid")


def test_select_ambiguous_kid_when_a_set_escaped_the_duplicate_check(ring: KeyRing) -> None:
    keys = ring.public_set(ring.c1_sig)
    twin = import_jwk(ring.atk_rsa.public_dict(), allow_private=False)
    object.__setattr__(keys, "keys", (*keys.keys, twin))  # simulate a corrupted set
    refused(KeyNotFound, keys.select_verification_key, "PS256", "c1-sig", reason="ambiguous")


def test_select_decryption_key_needs_the_private_key(ring: KeyRing) -> None:
    public_only = ring.public_set(ring.enc_rsa)
    refused(KeyNotFound, public_only.select_decryption_key, "RSA-OAEP-256", "enc-rsa", reason="key_mismatch")
    refused(KeyNotFound, public_only.select_decryption_key, "RSA-OAEP-256", None, reason="key_not_found")
    private = JwkSet((ring.enc_rsa, ring.enc_p256, ring.enc_x25519))
    assert private.select_decryption_key("RSA-OAEP-256", None) is ring.enc_rsa
    assert private.select_decryption_key("ECDH-ES+A256KW", "enc-p256") is ring.enc_p256
    assert private.select_decryption_key("ECDH-ES", "enc-x25519") is ring.enc_x25519
    # enc-p256 is bound to ECDH-ES+A256KW by its alg
    refused(KeyNotFound, private.select_decryption_key, "ECDH-ES", "enc-p256", reason="key_mismatch")


def test_select_encryption_key_newest_wins_and_kid_is_exact(ring: KeyRing) -> None:
    old = import_jwk(ring.enc_rsa.public_dict() | {"kid": "old"}, allow_private=False, created_at=100)
    new = import_jwk(
        generate_jwk("RSA-OAEP-256").public_dict() | {"kid": "new"}, allow_private=False, created_at=200
    )
    keys = JwkSet((old, new))
    assert keys.select_encryption_key("RSA-OAEP-256").kid == "new"
    assert keys.select_encryption_key("RSA-OAEP-256", "old").kid == "old"
    refused(KeyNotFound, keys.select_encryption_key, "RSA-OAEP", reason="key_not_found")
    refused(KeyNotFound, keys.select_encryption_key, "RSA-OAEP-256", "missing", reason="unknown_kid")


def test_signature_keys_never_selected_for_encryption_and_back(ring: KeyRing) -> None:
    both = ring.public_set(ring.c1_sig, ring.enc_rsa)
    assert both.select_verification_key("PS256", None).kid == "c1-sig"
    assert both.select_encryption_key("RSA-OAEP-256").kid == "enc-rsa"
    refused(KeyNotFound, both.select_verification_key, "PS256", "enc-rsa", reason="key_mismatch")
    refused(KeyNotFound, both.select_encryption_key, "RSA-OAEP-256", "c1-sig", reason="key_mismatch")


def test_key_ops_restrict_use(ring: KeyRing) -> None:
    verify_only = import_jwk(_public(ring.c1_rsa, kid="v", key_ops=["verify"]), allow_private=False)
    encrypt_only = import_jwk(
        _public(ring.c1_rsa, kid="e", use=None, key_ops=["encrypt"]), allow_private=False
    )
    assert verify_only.fits_signing_alg("PS256") and not verify_only.fits_encryption_alg("RSA-OAEP-256")
    assert encrypt_only.fits_encryption_alg("RSA-OAEP-256") and not encrypt_only.fits_signing_alg("PS256")


# --- small-order OKP keys (RFC 7748 §6.1, RFC 8032 §5.1.3) ------------------------------------------------------

ED25519_SMALL_ORDER = [
    "0100000000000000000000000000000000000000000000000000000000000000",  # identity
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2
    "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
    "0000000000000000000000000000000000000000000000000000000000000080",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
]
ED25519_NON_CANONICAL = [
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p + 1
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
]
X25519_SMALL_ORDER = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000080",  # high bit is masked
]


@pytest.mark.parametrize("point", ED25519_SMALL_ORDER)
def test_small_order_ed25519_keys_refused(point: str) -> None:
    """Wycheproof marks signatures under these keys "acceptable"; a key of small order verifies forgeries."""
    data = {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(bytes.fromhex(point))}
    refused(InvalidKey, import_jwk, data, allow_private=False, reason="weak_key")


@pytest.mark.parametrize("point", ED25519_NON_CANONICAL)
def test_non_canonical_ed25519_keys_refused(point: str) -> None:
    data = {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(bytes.fromhex(point))}
    refused(InvalidKey, import_jwk, data, allow_private=False)


@pytest.mark.parametrize("point", X25519_SMALL_ORDER)
def test_small_order_x25519_keys_refused(point: str) -> None:
    data = {"kty": "OKP", "crv": "X25519", "x": b64url_encode(bytes.fromhex(point))}
    refused(InvalidKey, import_jwk, data, allow_private=False, reason="weak_key")


def test_mixed_order_and_ordinary_okp_keys_accepted(ring: KeyRing) -> None:
    # a mixed-order Ed25519 key from Wycheproof (tc 160 group): not small order, accepted
    mixed = "0cf1b0a8da530a0f0b30f5b130391652f249680e0f3f7c80284bdc5ab955cfa3"
    import_jwk(
        {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(bytes.fromhex(mixed))}, allow_private=False
    )
    for _ in range(20):
        import_jwk(generate_jwk("EdDSA").public_dict(), allow_private=False)
        import_jwk(generate_jwk("ECDH-ES", crv="X25519").public_dict(), allow_private=False)

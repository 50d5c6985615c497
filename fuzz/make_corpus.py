"""Write the seed corpus under ``fuzz/corpus/<target>/`` (and, with ``--new-keys``, a new ``keys.json``).

The seeds are valid inputs made with this machine's keys at ``harness.NOW`` plus a few near misses, so the
fuzzer starts from inputs that pass the early checks. ``harness.ensure_seed_corpus`` runs it on first use;
neither the keys nor the corpus are committed.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import CLIENT_ID, HERE, ISSUER, NOW, REDIRECT, REDIRECT2, RP_REDIRECT, flow_state, keys

from jarmor.jose import b64url_encode, encrypt_jwe, generate_jwk, sign_jws
from jarmor.jose.testing import segment, sign_raw

KEY_SPECS = {
    "c1_es256": ("ES256", {}),
    "c1_ps256": ("PS256", {}),
    "c1_ed25519": ("EdDSA", {}),
    "as_es256": ("ES256", {}),
    "as_ps256": ("PS256", {}),
    "as_enc_rsa": ("RSA-OAEP-256", {}),
    "as_enc_p256": ("ECDH-ES+A256KW", {}),
    "c1_enc_p256": ("ECDH-ES+A128KW", {}),
}


def new_keys() -> None:
    out = {name: generate_jwk(alg, kid=name.replace("_", "-"), **kw).private_dict() for name, (alg, kw) in KEY_SPECS.items()}
    (HERE / "keys.json").write_text(json.dumps(out, indent=1) + "\n")
    keys.cache_clear()


def write(target: str, seeds: list[bytes]) -> None:
    folder = HERE / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for seed in seeds:
        (folder / hashlib.sha1(seed).hexdigest()).write_bytes(seed)


def ro_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": CLIENT_ID,
        "aud": ISSUER,
        "client_id": CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": "openid profile",
        "state": "s1",
        "nonce": "n1",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 300,
        "jti": "jti-1",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def request_object(**overrides: Any) -> str:
    return sign_jws(ro_claims(**overrides), keys()["c1_es256"], "ES256", typ="oauth-authz-req+jwt")


def jose_seeds() -> list[str]:
    k = keys()
    claims = ro_claims()
    out = [
        request_object(),
        sign_jws(claims, k["c1_ps256"], "PS256"),
        sign_jws(claims, k["c1_ed25519"], "EdDSA"),
        sign_jws({"iss": ISSUER, "aud": CLIENT_ID, "exp": NOW + 60, "code": "c"}, k["as_es256"], "ES256"),
        encrypt_jwe(request_object(), k["as_enc_rsa"], "RSA-OAEP-256", "A256GCM", cty="JWT"),
        encrypt_jwe(request_object(), k["as_enc_p256"], "ECDH-ES+A256KW", "A128CBC-HS256", cty="JWT"),
        encrypt_jwe(b'{"a":1}', k["c1_enc_p256"], "ECDH-ES+A128KW", "A256GCM"),
        f"{segment({'alg': 'none'})}.{segment(claims)}.",
        sign_raw({"alg": "ES256", "kid": "c1-es256", "crit": ["exp"]}, claims, k["c1_es256"], "ES256"),
        f"{segment({'alg': 'HS256', 'kid': 'c1-es256'})}.{segment(claims)}.{b64url_encode(b'x' * 32)}",
    ]
    return out


def jarm(mode: str, **overrides: Any) -> str:
    claims: dict[str, Any] = {
        "iss": ISSUER, "aud": CLIENT_ID, "iat": NOW, "exp": NOW + 300, "code": "code-1", "state": flow_state(mode),
    }
    claims.update(overrides)
    return sign_jws({k: v for k, v in claims.items() if v is not None}, keys()["as_es256"], "ES256")


def jarm_seeds() -> list[str]:
    k = keys()
    out = [
        f"{RP_REDIRECT}?{urlencode({'response': jarm('query.jwt')})}",
        f"{RP_REDIRECT}#{urlencode({'response': jarm('fragment.jwt')})}",
        urlencode({"response": jarm("form_post.jwt")}),
        f"{RP_REDIRECT}?{urlencode({'response': jarm('query.jwt', code=None, error='access_denied')})}",
        f"{RP_REDIRECT}?{urlencode({'code': 'c', 'state': flow_state('query'), 'iss': ISSUER})}",
        f"{RP_REDIRECT}#{urlencode({'code': 'c', 'state': flow_state('fragment'), 'iss': ISSUER})}",
        urlencode({"code": "c", "state": flow_state("form_post"), "iss": ISSUER}),
        f"{RP_REDIRECT}?{urlencode({'error': 'access_denied', 'state': flow_state('query')})}",
        "E" + f"{RP_REDIRECT}?"
        + urlencode({"response": encrypt_jwe(jarm("query.jwt"), k["c1_enc_p256"], "ECDH-ES+A128KW", "A128CBC-HS256",
                                             cty="JWT")}),
        f"{RP_REDIRECT}?{urlencode({'response': sign_jws({'iss': ISSUER}, k['as_ps256'], 'PS256')})}",
    ]
    return out


def main() -> None:
    if "--new-keys" in sys.argv or not (HERE / "keys.json").exists():
        new_keys()
    k = keys()
    write("jose", [s.encode() for s in jose_seeds()])
    ros = [
        request_object(),
        request_object(response_mode="fragment.jwt", redirect_uri=REDIRECT2, max_age=600, prompt="login"),
        request_object(response_mode="form_post", scope="openid", claims={"id_token": {}}),
        request_object(redirect_uri=None),
        request_object(state=None, nonce=None, nbf=None),
        encrypt_jwe(request_object(), k["as_enc_rsa"], "RSA-OAEP-256", "A256GCM", cty="JWT"),
        encrypt_jwe(request_object(), k["as_enc_p256"], "ECDH-ES+A256KW", "A128CBC-HS256"),
    ]
    seeds = [ro.encode() for ro in ros]
    seeds.append((request_object() + "\nstate=outer&response_mode=query&redirect_uri=" + REDIRECT2).encode())
    seeds.append((request_object() + "\nrequest_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Ax").encode())
    write("request_object", seeds)
    write("jarm", [s.encode() for s in jarm_seeds()])
    write(
        "params",
        [
            b"client_id=c1&response_type=code&redirect_uri=https%3A%2F%2Fc1.example%2Fcb&scope=openid&state=s",
            b"a=1&a=2",
            b"a=%00&b=",
            b"grant_type=authorization_code&code=abc&code_verifier=" + b"v" * 43,
            b"x=%E2%82%AC&y=%ff",
            b"#response=a.b.c&state=s",
            RP_REDIRECT.encode() + b"?code=a&state=b&iss=" + ISSUER.encode(),
        ],
    )
    metas = [
        {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt",
         "jwks": {"keys": [k["c1_es256"].public_dict()]}},
        {"risk_tier": "elevated", "redirect_uris": [REDIRECT, "http://127.0.0.1:8080/cb"],
         "jwks": {"keys": [k["c1_ps256"].public_dict()]}, "request_object_signing_alg": "PS256",
         "response_modes": ["jwt", "query.jwt"], "scope": "openid profile", "client_name": "x"},
        {"risk_tier": "baseline", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic",
         "grant_types": ["authorization_code", "refresh_token"], "contacts": ["a@b.example"]},
        {"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
         "jwks_uri": "https://c1.example/jwks"},
        {"redirect_uris": [REDIRECT], "jwks": {"keys": [k["c1_enc_p256"].public_dict(), k["c1_es256"].public_dict()]},
         "authorization_encrypted_response_alg": "ECDH-ES+A128KW", "authorization_encrypted_response_enc": "A256GCM"},
    ]
    write("metadata", [json.dumps(m).encode() for m in metas])


if __name__ == "__main__":
    main()

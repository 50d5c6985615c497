"""Builders for hostile JOSE inputs and a cost meter, for tests (jarmor's own and its users').

The library never imports this module. Everything here deliberately bypasses the checks of ``tokens``:
``sign_raw`` signs any header and payload bytes, ``hmac_raw`` computes an HS* token with any secret (the
classic key-confusion forgery), ``segment`` encodes anything as one base64url segment. ``bounded`` asserts
that a block finishes within a wall-clock and a traced-memory budget (catalog BOUNDED(t, m)).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import ec, rsa, x25519
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.keywrap import aes_key_wrap

from .b64 import b64url_encode
from .errors import JoseError
from .forgery import hmac_raw, segment
from .keys import Jwk, JwkSet, generate_jwk, import_jwk
from .tokens import ENC_SIZES, SIGNERS

__all__ = [
    "Cost",
    "KeyRing",
    "aead_encrypt",
    "bounded",
    "concat_kdf",
    "encrypt_raw",
    "hmac_raw",
    "keyring",
    "refused",
    "segment",
    "sign_raw",
]

E = TypeVar("E", bound=JoseError)


def sign_raw(
    header: Mapping[str, Any] | bytes | str,
    payload: Mapping[str, Any] | bytes | str,
    key: Jwk,
    alg: str,
) -> str:
    """A compact JWS over exactly these header and payload segments, signed with ``key`` as ``alg``.

    No header member is checked or added, so the result can carry ``crit``, ``b64``, an embedded ``jwk``, a
    hostile ``kid`` or a ``typ`` of the test's choosing.
    """
    head, body = segment(header), segment(payload)
    signing_input = f"{head}.{body}".encode("ascii")
    signature = SIGNERS[alg].sign(signing_input, key.key)
    return f"{head}.{body}.{b64url_encode(signature)}"


@dataclass
class Cost:
    """What a ``bounded`` block spent: wall-clock seconds and peak traced memory in bytes."""

    seconds: float = 0.0
    peak_bytes: int = 0


@contextmanager
def bounded(seconds: float = 0.5, megabytes: float = 5.0) -> Iterator[Cost]:
    """Assert that the block costs at most ``seconds`` of this process's CPU time and allocates at most
    ``megabytes`` at its peak. CPU time, not wall-clock: on a shared machine other processes stretch the wall
    clock, never the work this block does (the budgets are generous multiples of that work).

    Memory is measured with ``tracemalloc`` (Python allocations, including bytes and str buffers). The block
    may raise: the exception propagates after the budget has been checked, so
    ``with pytest.raises(E), bounded(): ...`` checks both.
    """
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    cost = Cost()
    start = time.process_time()
    try:
        yield cost
    finally:
        cost.seconds = time.process_time() - start
        _, peak = tracemalloc.get_traced_memory()
        cost.peak_bytes = max(0, peak - base)
        if not was_tracing:
            tracemalloc.stop()
        if cost.seconds > seconds:
            raise AssertionError(f"took {cost.seconds:.3f} s of CPU, budget {seconds} s")
        if cost.peak_bytes > megabytes * 1024 * 1024:
            raise AssertionError(f"peak memory {cost.peak_bytes / 1048576:.2f} MiB, budget {megabytes} MiB")


def refused(
    error: type[E],
    call: Callable[..., object],
    *args: Any,
    reason: str | None = None,
    seconds: float = 0.5,
    megabytes: float = 5.0,
    **kwargs: Any,
) -> E:
    """Call and require a refusal of type ``error`` (and ``reason``), within the ``bounded`` budget.

    Any other exception propagates unchanged, so a raw ``ValueError`` escaping the layer fails the test.
    """
    caught: E | None = None
    with bounded(seconds, megabytes):
        try:
            call(*args, **kwargs)
        except error as exc:
            caught = exc
    if caught is None:
        name = getattr(call, "__name__", repr(call))
        raise AssertionError(f"{name} accepted the input; expected {error.__name__}")
    if reason is not None and caught.reason != reason:
        raise AssertionError(f"refused with reason {caught.reason!r}, expected {reason!r}: {caught}")
    return caught


def concat_kdf(shared: bytes, algorithm_id: str, bits: int, apu: bytes = b"", apv: bytes = b"") -> bytes:
    """RFC 7518 §4.6.2 Concat KDF (single-step, SHA-256) as used by ECDH-ES."""

    def field_(value: bytes) -> bytes:
        return struct.pack(">I", len(value)) + value

    other = field_(algorithm_id.encode()) + field_(apu) + field_(apv) + struct.pack(">I", bits)
    return ConcatKDFHash(hashes.SHA256(), bits // 8, other).derive(shared)


def aead_encrypt(enc: str, cek: bytes, iv: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """RFC 7518 §5.2 (AES-CBC + HMAC-SHA2) and §5.3 (AES-GCM) content encryption: (ciphertext, tag)."""
    if enc.endswith("GCM"):
        out = AESGCM(cek).encrypt(iv, plaintext, aad)
        return out[:-16], out[-16:]
    half = len(cek) // 2
    mac_key, enc_key = cek[:half], cek[half:]
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    digest = {16: hashlib.sha256, 24: hashlib.sha384, 32: hashlib.sha512}[half]
    mac = hmac.new(mac_key, aad + iv + ciphertext + struct.pack(">Q", len(aad) * 8), digest).digest()
    return ciphertext, mac[:half]


def encrypt_raw(
    header: Mapping[str, Any],
    plaintext: bytes,
    recipient: Jwk | None = None,
    *,
    cek: bytes | None = None,
    iv: bytes | None = None,
) -> str:
    """A compact JWE with exactly this protected header (nothing checked, nothing refused).

    RSA-OAEP, RSA-OAEP-256 and RSA1_5 wrap the CEK to ``recipient``; ECDH-ES(+A*KW) without an ``epk`` in
    ``header`` agrees a key with a fresh ephemeral key and adds its ``epk``. With a hostile ``epk`` given,
    or any other ``alg``, the CEK is random and the encrypted key is random bytes: such tokens exist to be
    refused before decryption.
    """
    alg, enc = str(header["alg"]), str(header["enc"])
    iv_len, _, cek_len = ENC_SIZES.get(enc, (12, 16, 16))
    head = dict(header)
    iv = os.urandom(iv_len) if iv is None else iv
    ek = b""
    raw = recipient.key.raw_value if recipient is not None else None
    public = raw.public_key() if isinstance(raw, rsa.RSAPrivateKey) else raw
    if alg in ("RSA-OAEP", "RSA-OAEP-256", "RSA1_5") and isinstance(public, rsa.RSAPublicKey):
        cek = cek or os.urandom(cek_len)
        pad: asym_padding.AsymmetricPadding
        if alg == "RSA1_5":
            pad = asym_padding.PKCS1v15()
        else:
            algo = hashes.SHA1() if alg == "RSA-OAEP" else hashes.SHA256()  # noqa: S303 - RFC 7518 §4.3
            pad = asym_padding.OAEP(asym_padding.MGF1(algo), algo, None)
        ek = public.encrypt(cek, pad)
    elif alg.startswith("ECDH-ES") and "epk" not in head and recipient is not None:
        shared, epk = _ephemeral_agreement(recipient)
        head["epk"] = epk
        if alg == "ECDH-ES":
            cek = concat_kdf(shared, enc, cek_len * 8)
        else:
            kek_bits = int(alg[len("ECDH-ES+A") : -len("KW")])
            kek = concat_kdf(shared, alg, kek_bits)
            cek = cek or os.urandom(cek_len)
            ek = aes_key_wrap(kek, cek)
    else:
        cek = cek or os.urandom(cek_len)
        ek = b"" if alg == "ECDH-ES" else os.urandom(cek_len + 8)
    aad_segment = segment(head)
    ciphertext, tag = aead_encrypt(enc, cek, iv, plaintext, aad_segment.encode("ascii"))
    return ".".join([aad_segment, *(b64url_encode(p) for p in (ek, iv, ciphertext, tag))])


def _ephemeral_agreement(recipient: Jwk) -> tuple[bytes, dict[str, Any]]:
    raw = recipient.key.raw_value
    if isinstance(raw, x25519.X25519PrivateKey | x25519.X25519PublicKey):
        peer = raw.public_key() if isinstance(raw, x25519.X25519PrivateKey) else raw
        mine = x25519.X25519PrivateKey.generate()
        epk = {"kty": "OKP", "crv": "X25519", "x": b64url_encode(mine.public_key().public_bytes_raw())}
        return mine.exchange(peer), epk
    if isinstance(raw, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        peer_ec = raw.public_key() if isinstance(raw, ec.EllipticCurvePrivateKey) else raw
        mine_ec = ec.generate_private_key(peer_ec.curve)
        numbers = mine_ec.public_key().public_numbers()
        size = (peer_ec.curve.key_size + 7) // 8
        epk = {
            "kty": "EC",
            "crv": str(recipient.crv),
            "x": b64url_encode(numbers.x.to_bytes(size, "big")),
            "y": b64url_encode(numbers.y.to_bytes(size, "big")),
        }
        return mine_ec.exchange(ec.ECDH(), peer_ec), epk
    raise TypeError("ECDH-ES needs an EC or X25519 recipient key")


@dataclass(frozen=True)
class KeyRing:
    """The catalog's cast of keys (attack-catalog conventions): a client, a second client, an attacker."""

    c1_sig: Jwk  # PS256, kid "c1-sig"
    c1_rsa: Jwk  # RSA without alg (usable for PS*/RS*), kid "c1-rsa"
    c1_es256: Jwk  # kid "c1-es256"
    c1_es384: Jwk
    c1_es512: Jwk
    c1_ed25519: Jwk  # alg EdDSA
    c2_sig: Jwk  # PS256, kid "c2-sig"
    atk_rsa: Jwk  # attacker, PS256, kid "c1-sig" (claims the victim's kid)
    atk_es256: Jwk  # attacker, kid "c1-es256"
    enc_rsa: Jwk  # RSA-OAEP-256 recipient, kid "enc-rsa"
    enc_p256: Jwk  # ECDH-ES+A256KW recipient (P-256), kid "enc-p256"
    enc_x25519: Jwk  # ECDH-ES recipient (X25519), kid "enc-x25519"
    extra: dict[str, Jwk] = field(default_factory=dict)

    def public_set(self, *keys: Jwk) -> JwkSet:
        """A verification set holding only the public halves of ``keys``."""
        return JwkSet(tuple(import_jwk(k.public_dict(), allow_private=False) for k in keys))

    def client1(self) -> JwkSet:
        """Client 1's registered signing keys, public halves only."""
        return self.public_set(
            self.c1_sig, self.c1_rsa, self.c1_es256, self.c1_es384, self.c1_es512, self.c1_ed25519
        )


@cache
def keyring() -> KeyRing:
    """Generate the key cast once per process (RSA generation dominates the cost)."""
    c1_sig = generate_jwk("PS256", kid="c1-sig")
    c1_rsa_src = generate_jwk("RS256", kid="c1-rsa")
    raw = c1_rsa_src.private_dict()
    raw.pop("alg", None)
    c1_rsa = import_jwk(raw, allow_private=True)
    return KeyRing(
        c1_sig=c1_sig,
        c1_rsa=c1_rsa,
        c1_es256=generate_jwk("ES256", kid="c1-es256"),
        c1_es384=generate_jwk("ES384", kid="c1-es384"),
        c1_es512=generate_jwk("ES512", kid="c1-es512"),
        c1_ed25519=generate_jwk("EdDSA", kid="c1-ed25519"),
        c2_sig=generate_jwk("PS256", kid="c2-sig"),
        atk_rsa=generate_jwk("PS256", kid="c1-sig"),
        atk_es256=generate_jwk("ES256", kid="c1-es256"),
        enc_rsa=generate_jwk("RSA-OAEP-256", kid="enc-rsa"),
        enc_p256=generate_jwk("ECDH-ES+A256KW", kid="enc-p256"),
        enc_x25519=generate_jwk("ECDH-ES", kid="enc-x25519", crv="X25519"),
    )

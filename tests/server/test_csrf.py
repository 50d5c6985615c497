"""The sign-in forms' CSRF tokens: bound to what they name, verified by any live secret, nothing else."""

from __future__ import annotations

from jarmor.server.csrf import csrf_token, csrf_valid


def test_tokens_are_bound_and_survive_a_secret_rotation() -> None:
    old, new = b"o" * 32, b"n" * 32
    token = csrf_token(old, "ia-1", "bind", "login")
    assert csrf_valid([new, old], token, "ia-1", "bind", "login")  # a page made before the rotation
    assert not csrf_valid([new], token, "ia-1", "bind", "login")  # the old secret retired
    for parts in (("ia-2", "bind", "login"), ("ia-1", "other", "login"), ("ia-1", "bind", "consent")):
        assert not csrf_valid([old], token, *parts)
    assert not csrf_valid([old], token + "x", "ia-1", "bind", "login")
    assert not csrf_valid([old], "", "ia-1", "bind", "login")

"""One refetch of a client's keys, only when a fresh copy can cure the failure (a rotated key)."""

from __future__ import annotations

from typing import Any

import pytest

from jarmor.jose import JoseError, JwkSet
from jarmor.jose.errors import BadSignature, KeyNotFound
from jarmor.protocol import errors
from jarmor.protocol.refetch import rotated_key, using_client_keys


class Keys:
    def __init__(self) -> None:
        self.calls: list[bool] = []

    async def keys_for(self, client: Any, *, refresh: bool = False) -> JwkSet:
        self.calls.append(refresh)
        return JwkSet(())


class Env:
    def __init__(self) -> None:
        self.client_keys = Keys()


def failing(exc: BaseException, times: int) -> Any:
    left = [times]

    def use(keys: JwkSet) -> str:
        if left[0]:
            left[0] -= 1
            raise exc
        return "ok"

    return use


async def test_a_rotated_key_is_refetched_once() -> None:
    env = Env()
    assert await using_client_keys(env, None, failing(KeyNotFound("x", reason="unknown_kid"), 1)) == "ok"  # type: ignore[arg-type]
    assert env.client_keys.calls == [False, True]


async def test_a_wrapped_rotated_key_is_refetched_too() -> None:
    wrapped = errors.InvalidRequestObject("refused")
    wrapped.__cause__ = KeyNotFound("x")
    env = Env()
    assert await using_client_keys(env, None, failing(wrapped, 1)) == "ok"  # type: ignore[arg-type]
    assert env.client_keys.calls == [False, True]


async def test_other_failures_are_not_refetched_and_a_second_failure_stands() -> None:
    env = Env()
    with pytest.raises(BadSignature):
        await using_client_keys(env, None, failing(BadSignature("bad"), 1))  # type: ignore[arg-type]
    assert env.client_keys.calls == [False]
    env = Env()
    with pytest.raises(KeyNotFound):
        await using_client_keys(env, None, failing(KeyNotFound("x"), 2))  # type: ignore[arg-type]
    assert env.client_keys.calls == [False, True]  # never a second refetch


def test_rotated_key() -> None:
    assert rotated_key(KeyNotFound("x", reason="unknown_kid")) and rotated_key(KeyNotFound("x"))
    assert not rotated_key(JoseError("x")) and not rotated_key(ValueError("x"))

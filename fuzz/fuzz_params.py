#!/usr/bin/env python3
"""Fuzz target: parameter parsing — the server's ``parse_parameters`` (query strings and form bodies, as
bytes and as text) and the client's ``parse_callback``.

Findings: an exception other than ``OAuthError`` / ``ClientError``; a parsed map that breaks the parser's
promises (repeated names, NUL characters, empty values, more than the limits).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from instrument import instrumented

with instrumented(__name__, ["jarmor"]):
    from harness import Finding, fuzz_main, text

    from jarmor.client.callback import MAX_CALLBACK_FIELDS, parse_callback
    from jarmor.client.errors import ClientError
    from jarmor.protocol.errors import OAuthError
    from jarmor.protocol.params import MAX_PARAMETERS, MAX_VALUE_LENGTH, parse_parameters


def _check(params: dict[str, str]) -> None:
    if len(params) > MAX_PARAMETERS * 2:
        raise Finding(f"{len(params)} parameters accepted")
    for name, value in params.items():
        if not isinstance(name, str) or not isinstance(value, str) or not value:
            raise Finding(f"bad pair {name!r}={value!r}")
        if "\x00" in name or "\x00" in value or len(value) > MAX_VALUE_LENGTH:
            raise Finding(f"NUL or oversized value accepted in {name!r}")
        value.encode("utf-8")  # a lone surrogate would raise here (and later, in a response)


def test_one_input(data: bytes) -> None:
    for raw in (data, text(data)):
        try:
            params = parse_parameters(raw)
        except OAuthError as err:
            if err.status not in (400, 413):
                raise Finding(f"status {err.status}") from err
        else:
            _check(params)
    try:
        cb = parse_callback(text(data))
    except ClientError:
        return
    if len(cb.params) > MAX_CALLBACK_FIELDS * 2:
        raise Finding("too many callback parameters accepted")


if __name__ == "__main__":
    fuzz_main(test_one_input)

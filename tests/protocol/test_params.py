"""``parse_parameters``: RFC 6749 §3.1/§3.2 strict form and query parsing (attack catalog A33)."""

from __future__ import annotations

import pytest

from jarmor.protocol import errors
from jarmor.protocol.params import MAX_PARAMETERS, MAX_QUERY_LENGTH, MAX_VALUE_LENGTH, parse_parameters


def test_parses_form_encoding() -> None:
    assert parse_parameters("a=1&b=x+y&c=%C3%A9%2B") == {"a": "1", "b": "x y", "c": "é+"}
    assert parse_parameters(b"scope=openid%20profile") == {"scope": "openid profile"}


def test_empty_values_are_omitted() -> None:
    assert parse_parameters("a=&b=1&c") == {"b": "1"}


@pytest.mark.parametrize("raw", ["a=1&a=2", "a=1&a=1", "a=&a=1", "request_uri=x&request_uri=y"])
def test_repeated_parameters_are_refused(raw: str) -> None:
    with pytest.raises(errors.InvalidRequest, match="repeated"):
        parse_parameters(raw)


@pytest.mark.parametrize("raw", ["a=%00", "a%00=1", "a=%ff", b"a=\xff"])
def test_nul_and_invalid_utf8_are_refused(raw: str | bytes) -> None:
    with pytest.raises(errors.InvalidRequest):
        parse_parameters(raw)


def test_limits() -> None:
    with pytest.raises(errors.InvalidRequest, match="too long"):
        parse_parameters("a=" + "x" * (MAX_VALUE_LENGTH + 1), limit=MAX_VALUE_LENGTH * 2)
    with pytest.raises(errors.InvalidRequest, match="too many"):
        parse_parameters("&".join(f"p{i}=1" for i in range(MAX_PARAMETERS * 2 + 1)))
    for raw in ("a=" + "x" * MAX_QUERY_LENGTH, ("a=" + "x" * MAX_QUERY_LENGTH).encode()):
        with pytest.raises(errors.OAuthError) as exc:
            parse_parameters(raw)
        assert exc.value.status == 413 and exc.value.error == "invalid_request"
    assert len(parse_parameters("&".join(f"p{i}=1" for i in range(MAX_PARAMETERS)))) == MAX_PARAMETERS

"""``[settings.scope_descriptions]`` (``config.py``): strict like the rest of the configuration; an unknown
scope, a non-string or a multi-line description is an error that names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from jarmor.config import ConfigError, ServerConfig, load_config


def _load(tmp_path: Path, toml: str) -> ServerConfig:
    path = tmp_path / "jarmor.toml"
    path.write_text(toml)
    return load_config(path, environ={})


def test_descriptions_for_known_scopes(tmp_path: Path) -> None:
    config = _load(tmp_path, """
[policy.scopes]
payments = "high"
[settings.scope_descriptions]
payments = "  Make payments from your accounts "
email = "See the email address of your account"
""")
    assert config.settings.scope_descriptions == {
        "payments": "Make payments from your accounts",
        "email": "See the email address of your account",
    }


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('paymnets = "Pay"', "unknown scope(s) 'paymnets'"),
        ("email = 3", "scope_descriptions['email']: expected a non-empty string"),
        ('email = "  "', "scope_descriptions['email']: expected a non-empty string"),
        ('email = """two\nlines"""', "scope_descriptions['email']: at most 200 printable characters"),
        (f'email = "{"x" * 201}"', "scope_descriptions['email']: at most 200 printable characters"),
    ],
)
def test_bad_descriptions_are_named(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, f"[settings.scope_descriptions]\n{table}\n")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_not_a_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"scope_descriptions: expected a table"):
        _load(tmp_path, '[settings]\nscope_descriptions = "openid"\n')

"""Server configuration: command-line flags > ``JARMOR_*`` environment variables > TOML file > defaults."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .protocol.addresses import is_loopback_host
from .protocol.context import Settings
from .protocol.policy import Policy, PolicyError, policy_from_config
from .protocol.tables import TableError, check_keys, check_table


class ConfigError(ValueError):
    pass


DEFAULT_DATABASE = "sqlite:///jarmor.db"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    issuer: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    database: str = DEFAULT_DATABASE
    redis: str | None = None
    registration_token: str | None = None
    auto_approve: str | None = None
    workers: int = 1
    metrics_port: int | None = None  # serve /metrics on this port instead of the main one
    # peers whose X-Forwarded-For is believed (addresses or networks); default: none
    trusted_proxies: tuple[str, ...] = ()
    # the one header those proxies write: x-forwarded-for or forwarded (RFC 7239); the other is ignored
    forwarded_header: str = "x-forwarded-for"
    log_format: str = "text"
    log_level: str = "warning"
    policy: Policy = field(default_factory=Policy)
    settings: Settings = field(default_factory=Settings)

    def validate(self) -> ServerConfig:
        parts = urlsplit(self.issuer)
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
            raise ConfigError("issuer must be an https URL without query or fragment (RFC 9207 §2)")
        loopback = is_loopback_host(parts.hostname)
        if parts.scheme == "http" and not loopback:
            raise ConfigError("an http issuer is only allowed on a loopback address")
        if self.auto_approve and not loopback:
            raise ConfigError("--auto-approve is refused unless the issuer is a loopback address")
        if self.auto_approve and not is_loopback_host(self.host):
            # the issuer says nothing about who can connect: a server listening on 0.0.0.0 would approve
            # every request as this subject for anyone who can reach the machine
            raise ConfigError("--auto-approve is refused unless the server listens on a loopback address (--host)")
        if not 0 < self.port < 65536:
            raise ConfigError("port must be between 1 and 65535")
        if self.workers < 1:
            raise ConfigError("workers must be at least 1")
        if not 0 < self.port < 65536:
            raise ConfigError("port must be between 1 and 65535")
        if self.metrics_port is not None and not 0 < self.metrics_port < 65536:
            raise ConfigError("metrics_port must be between 1 and 65535")
        for entry in self.trusted_proxies:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ConfigError(f"trusted_proxies: {entry[:64]!r} is not an IP address or network") from None
        if self.forwarded_header not in ("x-forwarded-for", "forwarded"):
            raise ConfigError("forwarded_header must be x-forwarded-for or forwarded")
        if self.log_format not in ("text", "json"):
            raise ConfigError("log_format must be text or json")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise ConfigError("log_level must be debug, info, warning or error")
        known = self.settings.scopes | frozenset(self.policy.scope_tiers)
        unknown = sorted(set(self.settings.scope_descriptions) - known)
        if unknown:
            raise ConfigError(
                f"[settings] scope_descriptions: unknown scope(s) {', '.join(map(repr, unknown))}"
                " (not in [settings] scopes or [policy.scopes])"
            )
        return self


# option name -> (environment variable, type)
_OPTIONS: dict[str, type] = {
    "issuer": str,
    "host": str,
    "port": int,
    "database": str,
    "redis": str,
    "registration_token": str,
    "auto_approve": str,
    "workers": int,
    "metrics_port": int,
    "log_format": str,
    "log_level": str,
    "trusted_proxies": tuple,
    "forwarded_header": str,
}


def _typed(name: str, value: Any) -> Any:
    """A ``[server]`` value from TOML: it must already have the option's type (no string for a number)."""
    kind = _OPTIONS[name]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"[server]: {name} must be an integer")
    if kind is str and not isinstance(value, str):
        raise ConfigError(f"[server]: {name} must be a string")
    return _coerce(name, value)


def _coerce(name: str, value: Any) -> Any:
    kind = _OPTIONS[name]
    if kind is tuple:  # a TOML array, or a comma-separated flag / environment variable
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
            raise ConfigError(f"{name}: expected a list of strings")
        return tuple(i.strip() for i in items if i.strip())
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: expected {kind.__name__}") from exc


# the smallest value each numeric setting accepts (every other number: 0, i.e. never negative)
_SETTING_MINIMUMS = {
    "login_max_failures": 1, "login_lockout_window": 1, "jarm_lifetime": 1, "id_token_lifetime": 1,
    "interaction_lifetime": 1, "client_assertion_max_lifetime": 1, "request_object_max_age": 1,
    "max_state_length": 1, "max_nonce_length": 1, "max_scope_length": 1, "fetch_timeout": 0.1,
    "fetch_connect_timeout": 0.1, "fetch_read_timeout": 0.1, "fetch_max_bytes": 1, "key_refresh_interval": 1,
    "flow_record_queue": 1, "flow_record_batch": 1, "flow_checkpoint_every": 1, "rate_limit_per_address": 1,
}
TABLES = ("server", "policy", "settings")


def _settings_from(table: Mapping[str, Any]) -> Settings:
    """``[settings]``: every key must be a ``Settings`` field, every value of its type and range."""
    plain = {k: v for k, v in table.items() if k != "scope_descriptions"}
    try:
        values = check_table("[settings]", plain, Settings, minimums=_SETTING_MINIMUMS)
    except TableError as exc:
        raise ConfigError(str(exc)) from exc
    if "scope_descriptions" in table:
        values["scope_descriptions"] = _scope_descriptions(table["scope_descriptions"])
    return replace(Settings(), **values)


MAX_SCOPE_DESCRIPTION = 200


def _scope_descriptions(table: Any) -> dict[str, str]:
    """``[settings.scope_descriptions]``: scope = "what it lets the application do", shown to end users on the
    consent page (escaped there); one line of printable text each."""
    if not isinstance(table, Mapping):
        raise ConfigError("[settings] scope_descriptions: expected a table of scope = \"description\"")
    out: dict[str, str] = {}
    for scope, text in table.items():
        where = f"[settings] scope_descriptions[{scope!r}]"
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{where}: expected a non-empty string")
        if len(text) > MAX_SCOPE_DESCRIPTION or not text.isprintable():
            raise ConfigError(f"{where}: at most {MAX_SCOPE_DESCRIPTION} printable characters on one line")
        out[str(scope)] = text.strip()
    return out


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ServerConfig:
    """Build the configuration. ``overrides`` are command-line flags (``None`` values are ignored)."""
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
    try:
        check_keys("the configuration file", data, TABLES)
        for name in TABLES:
            if not isinstance(data.get(name, {}), dict):
                raise ConfigError(f"[{name}] must be a table")
        server = dict(data.get("server", {}))
        check_keys("[server]", server, _OPTIONS)
    except TableError as exc:
        raise ConfigError(str(exc)) from exc
    values: dict[str, Any] = {k: _typed(k, v) for k, v in server.items()}
    for name in _OPTIONS:
        env_value = environ.get("JARMOR_" + name.upper())
        if env_value:
            values[name] = _coerce(name, env_value)
    for name, value in (overrides or {}).items():
        if value is not None and name in _OPTIONS:
            values[name] = _coerce(name, value)
    if "issuer" not in values and ("host" in values or "port" in values):
        values["issuer"] = f"http://{values.get('host', '127.0.0.1')}:{values.get('port', 8000)}"
    try:
        policy = policy_from_config(data.get("policy", {}))
    except PolicyError as exc:
        raise ConfigError(str(exc)) from exc
    settings = _settings_from(data.get("settings", {}))
    if values.get("auto_approve"):
        settings = replace(settings, auto_approve=values["auto_approve"])
    return ServerConfig(policy=policy, settings=settings, **values).validate()

"""Server configuration: command-line flags > ``JARMOR_*`` environment variables > TOML file > defaults."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .protocol.addresses import is_loopback_host
from .protocol.context import Settings
from .protocol.policy import Policy, PolicyError, policy_from_config


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
        if self.metrics_port is not None and not 0 < self.metrics_port < 65536:
            raise ConfigError("metrics_port must be between 1 and 65535")
        if self.log_format not in ("text", "json"):
            raise ConfigError("log_format must be text or json")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise ConfigError("log_level must be debug, info, warning or error")
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
}


def _coerce(name: str, value: Any) -> Any:
    kind = _OPTIONS[name]
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: expected {kind.__name__}") from exc


# sign-in limits: the smallest value each accepts (server/signin.py)
_LOGIN_LIMITS = {"login_max_failures": 1, "login_lockout_window": 1, "login_max_failures_per_address": 0}


def _check_login_limits(values: Mapping[str, Any]) -> None:
    for name, least in _LOGIN_LIMITS.items():
        if name not in values:
            continue
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigError(f"[settings] {name}: expected an integer of at least {least}")


def _settings_from(table: Mapping[str, Any]) -> Settings:
    known = {f.name for f in fields(Settings)}
    unknown = set(table) - known
    if unknown:
        raise ConfigError(f"[settings]: unknown option(s) {', '.join(sorted(unknown))}")
    values = dict(table)
    _check_login_limits(values)
    if "scopes" in values:
        values["scopes"] = frozenset(values["scopes"])
    return replace(Settings(), **values)


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
    server = dict(data.get("server", {}))
    unknown = set(server) - set(_OPTIONS)
    if unknown:
        raise ConfigError(f"[server]: unknown option(s) {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {k: _coerce(k, v) for k, v in server.items()}
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

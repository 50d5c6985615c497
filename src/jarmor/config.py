"""Server configuration: command-line flags > ``JARMOR_*`` environment variables > TOML file > defaults.

One typed model is the single source of the options. ``ServerConfig``'s fields, each declared with
``option(default, help, ...)``, *are* the ``[server]`` table: from each field come its TOML key
(``[server] metrics_port``), its flag (``--metrics-port``, ``cli/common.add_server_options``), its environment
variable (``JARMOR_METRICS_PORT``, also how ``jarmor serve`` hands flags down to its workers), its type and
range, whether it is a secret (hidden by ``jarmor config show``) and its help text. ``ENVIRONMENT_ONLY``
declares the few variables that are not ``[server]`` options (the configuration file itself, key-encryption
keys, which never belong in a file or on a command line); ``from_environment`` is how any module reads one.
``[settings]`` is the ``protocol.context.Settings`` dataclass and ``[policy]`` ``protocol.policy``, both read
strictly by ``protocol.tables`` from their own annotations. Nothing else lists options: a test checks that
no module under ``src/jarmor`` reads a ``JARMOR_*`` variable by itself.

Why not pydantic-settings (or msgspec/cattrs): measured on this machine (``python -X importtime``, least of
seven runs), importing ``pydantic_settings`` costs about 300 ms, more than all of ``jarmor.config`` with the
protocol core it validates against (235 ms), on every CLI command and every worker start. And its error
messages would have to be rewritten anyway: they span several lines, carry no "did you mean" for a mistyped
key, and echo the refused value (``input_value=...``), which for a mistyped secret prints the secret. The
strict checks here are about 150 lines over plain dataclasses (``protocol/tables.py`` and this module).
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar, cast, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

from .protocol.addresses import is_loopback_host
from .protocol.context import Settings, authority_of
from .protocol.policy import Policy, PolicyError, policy_from_config
from .protocol.tables import TableError, check_keys, check_table

T = TypeVar("T")


class ConfigError(ValueError):
    pass


DEFAULT_DATABASE = "sqlite:///jarmor.db"
ENV_PREFIX = "JARMOR_"


@dataclass(frozen=True, slots=True)
class Option:
    """One option: its name gives its TOML key, its flag and its environment variable."""

    name: str
    help: str
    kind: type = str  # str, int or tuple (a TOML array; comma-separated in a flag or variable)
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    low: int | None = None  # numbers: the least value accepted
    high: int | None = None  # numbers: the greatest value accepted
    secret: bool = False  # hidden by ``jarmor config show``
    in_file: bool = True  # may be set in the file's ``[server]`` table (else: environment / flag only)
    flag: bool = True  # has a command-line flag

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def flag_name(self) -> str:
        return "--" + self.name.replace("_", "-")


def option(default: T, help: str, **spec: Any) -> T:
    """A ``ServerConfig`` field that is an option (``Option``'s other members as keywords)."""
    made: T = field(default=default, metadata={"option": (help, spec)})
    return made


@dataclass(frozen=True, slots=True)
class ServerConfig:
    config: str | None = option(None, "TOML configuration file", metavar="FILE", in_file=False)
    issuer: str = option("http://127.0.0.1:8000", "issuer identifier (default http://HOST:PORT)", metavar="URL")
    host: str = option("127.0.0.1", "address to listen on (default 127.0.0.1)")
    port: int = option(8000, "port to listen on (default 8000)", low=1, high=65535)
    database: str = option(DEFAULT_DATABASE, f"database URL (default: {DEFAULT_DATABASE})", metavar="URL")
    redis: str | None = option(None, "Redis URL for short-lived records (optional)", metavar="URL")
    registration_token: str | None = option(
        None, "initial access token for registration", metavar="TOKEN", secret=True
    )
    auto_approve: str | None = option(
        None, "skip login and consent, approving as SUBJECT (loopback issuer and --host only)", metavar="SUBJECT"
    )
    workers: int = option(1, "number of worker processes", low=1)
    metrics_port: int | None = option(
        None, "serve /metrics on this port instead of the main one", metavar="PORT", low=1, high=65535
    )
    # peers whose X-Forwarded-For is believed (addresses or networks); default: none
    trusted_proxies: tuple[str, ...] = option(
        (), "comma-separated proxy addresses/networks whose X-Forwarded-For is believed", metavar="NETS"
    )
    # the one header those proxies write: x-forwarded-for or forwarded (RFC 7239); the other is ignored
    forwarded_header: str = option(
        "x-forwarded-for",
        "the header trusted proxies write: x-forwarded-for (default) or forwarded (RFC 7239); the other is ignored",
        choices=("x-forwarded-for", "forwarded"),
    )
    log_format: str = option("text", "log lines as text (default) or JSON", choices=("text", "json"))
    log_level: str = option("warning", "default warning", choices=("debug", "info", "warning", "error"))
    # TLS served by jarmor itself (PEM files); with ssl_ca_certs, client certificates are requested (optional)
    # and verified against it; behind a proxy, ssl_ca_certs verifies the forwarded Client-Cert (server/mtls.py)
    ssl_certfile: str | None = option(None, "serve TLS with this PEM certificate (chain)", metavar="FILE")
    ssl_keyfile: str | None = option(None, "the PEM private key of --ssl-certfile", metavar="FILE")
    ssl_ca_certs: str | None = option(
        None, "PEM CA certificates client certificates must chain to (RFC 8705 tls_client_auth)", metavar="FILE"
    )
    # RFC 8705 §5: base URL of the endpoints clients use for mutual TLS, when not the issuer's
    mtls_issuer: str | None = option(
        None, "base URL of the mutual-TLS endpoint aliases (RFC 8705 §5)", metavar="URL"
    )
    policy: Policy = field(default_factory=Policy)
    settings: Settings = field(default_factory=Settings)

    def validate(self) -> ServerConfig:
        for opt in OPTIONS.values():
            _check_range(opt, getattr(self, opt.name))
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
        for entry in self.trusted_proxies:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ConfigError(f"trusted_proxies: {entry[:64]!r} is not an IP address or network") from None
        self._validate_tls()
        jwt_tiers = sorted(t.name for t in self.policy.tiers.values() if t.access_token_format == "jwt")
        if jwt_tiers and not self.settings.access_token_audience:
            raise ConfigError(
                f"[policy.tiers.{jwt_tiers[0]}] access_token_format = \"jwt\" needs [settings] access_token_audience"
                " (RFC 9068 §3: the aud of JWT access tokens)"
            )
        known = self.settings.scopes | frozenset(self.policy.scope_tiers)
        unknown = sorted(set(self.settings.scope_descriptions) - known)
        if unknown:
            raise ConfigError(
                f"[settings] scope_descriptions: unknown scope(s) {', '.join(map(repr, unknown))}"
                " (not in [settings] scopes or [policy.scopes])"
            )
        return self

    def _validate_tls(self) -> None:
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            raise ConfigError("ssl_certfile and ssl_keyfile go together")
        for name in ("ssl_certfile", "ssl_keyfile", "ssl_ca_certs"):
            path = getattr(self, name)
            if path is not None and not os.access(path, os.R_OK):
                raise ConfigError(f"{name}: cannot read {path[:200]!r}")
        if self.ssl_certfile and urlsplit(self.issuer).scheme != "https":
            raise ConfigError("ssl_certfile is set: the issuer must be an https URL")
        if self.mtls_issuer is not None:
            parts = urlsplit(self.mtls_issuer)
            if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
                raise ConfigError("mtls_issuer must be an https URL without query or fragment")
            if authority_of(self.mtls_issuer) == authority_of(self.issuer):
                # requests to the aliases are told apart by their Host (a DPoP proof's htu names the alias)
                raise ConfigError("mtls_issuer must differ from the issuer in host or port (RFC 8705 §5)")
        if self.ssl_ca_certs and not self.ssl_certfile and not self.trusted_proxies:
            raise ConfigError(
                "ssl_ca_certs needs ssl_certfile (direct TLS) or trusted_proxies (a proxy forwards Client-Cert)"
            )
        if self.mtls_issuer is not None and not self.mtls:
            raise ConfigError("mtls_issuer needs client certificates: set ssl_ca_certs or trusted_proxies")

    @property
    def mtls(self) -> bool:
        """Client certificates can reach the server (RFC 8705): verified by a CA file, or forwarded by a proxy."""
        return bool(self.ssl_ca_certs) or bool(self.trusted_proxies)


def _kind(annotation: Any) -> type:
    """``str``, ``int`` or ``tuple``: the annotation without ``| None``."""
    if isinstance(annotation, types.UnionType):
        annotation = next(k for k in get_args(annotation) if k is not type(None))
    kind = get_origin(annotation) or annotation
    if kind not in (str, int, tuple):
        raise TypeError(f"a server option is a str, an int or a tuple, not {annotation}")
    return cast(type, kind)


def _server_options() -> dict[str, Option]:
    hints = get_type_hints(ServerConfig)
    out: dict[str, Option] = {}
    for f in fields(ServerConfig):
        if "option" in f.metadata:
            help, spec = f.metadata["option"]
            out[f.name] = Option(f.name, help, kind=_kind(hints[f.name]), **spec)
    return out


# every [server] option, in declaration order (derived from ``ServerConfig``: nothing else lists them)
OPTIONS: dict[str, Option] = _server_options()
# the other JARMOR_* variables jarmor reads: never from the file, nor from a flag (secrets, diagnostics)
ENVIRONMENT_ONLY: dict[str, Option] = {
    o.name: o
    for o in (
        Option(
            "key_encryption_key", "32 random bytes, base64url: server private keys are sealed at rest with it",
            secret=True, in_file=False, flag=False,
        ),
        Option(
            "key_encryption_key_previous", "comma-separated earlier key-encryption keys (rotation)",
            kind=tuple, secret=True, in_file=False, flag=False,
        ),
        Option(
            "audit_registration_token", "jarmor audit: the audited server's initial access token",
            secret=True, in_file=False, flag=False,
        ),
        Option("debug", "any value: a CLI command's unexpected error shows its traceback", in_file=False, flag=False),
        Option(
            "test_progress_interval", "tests: seconds between progress line updates (default 0.2)",
            in_file=False, flag=False,
        ),
    )
}


def from_environment(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of option ``name``'s ``JARMOR_*`` variable (unset or empty: ``None``)."""
    opt = OPTIONS.get(name) or ENVIRONMENT_ONLY[name]
    value = (os.environ if environ is None else environ).get(opt.env)
    return value or None


def _either(choices: tuple[str, ...]) -> str:
    return choices[0] if len(choices) == 1 else f"{', '.join(choices[:-1])} or {choices[-1]}"


def _check_range(opt: Option, value: Any) -> None:
    if opt.choices and value not in opt.choices:
        raise ConfigError(f"{opt.name} must be {_either(opt.choices)}")
    if opt.kind is not int or value is None:
        return
    low = opt.low if opt.low is not None else 0
    if opt.high is not None and not low <= value <= opt.high:
        raise ConfigError(f"{opt.name} must be between {low} and {opt.high}")
    if value < low:
        raise ConfigError(f"{opt.name} must be at least {low}")


def _typed(name: str, value: Any) -> Any:
    """A ``[server]`` value from TOML: it must already have the option's type (no string for a number)."""
    kind = OPTIONS[name].kind
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"[server]: {name} must be an integer")
    if kind is str and not isinstance(value, str):
        raise ConfigError(f"[server]: {name} must be a string")
    return _coerce(name, value)


def _coerce(name: str, value: Any) -> Any:
    kind = OPTIONS[name].kind
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
    "enrolment_link_lifetime": 5 * 60,
}
# the greatest value a numeric setting accepts, where there is one
_SETTING_MAXIMUMS = {"enrolment_link_lifetime": 7 * 86400}
TABLES = ("server", "policy", "settings")


def _settings_from(table: Mapping[str, Any]) -> Settings:
    """``[settings]``: every key must be a ``Settings`` field, every value of its type and range."""
    plain = {k: v for k, v in table.items() if k != "scope_descriptions"}
    try:
        values = check_table(
            "[settings]", plain, Settings, minimums=_SETTING_MINIMUMS, maximums=_SETTING_MAXIMUMS
        )
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


def _read_file(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The TOML file: only the known tables, each a table; ``[server]`` only known options."""
    if path is None:
        return {}
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    try:
        check_keys("the configuration file", data, TABLES)
        for name in TABLES:
            if not isinstance(data.get(name, {}), dict):
                raise ConfigError(f"[{name}] must be a table")
        check_keys("[server]", data.get("server", {}), [o.name for o in OPTIONS.values() if o.in_file])
    except TableError as exc:
        raise ConfigError(str(exc)) from exc
    return data


@dataclass(frozen=True, slots=True)
class Loaded:
    """A configuration and where each ``[server]`` option came from (``jarmor config show``)."""

    config: ServerConfig
    sources: dict[str, str]  # option name -> "flag", "environment (JARMOR_X)", "file [server]", "default"
    file: dict[str, Any]  # the parsed file ({} without one)


def read_config(
    path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Loaded:
    """Build the configuration: ``overrides`` are the command-line flags (``None`` values are ignored), then
    each option's ``JARMOR_*`` variable in ``environ`` (default ``os.environ``), then the file: ``path``, or
    else the ``--config`` flag or ``JARMOR_CONFIG``."""
    flags = {k: v for k, v in (overrides or {}).items() if v is not None and k in OPTIONS}
    env = {name: value for name in OPTIONS if (value := from_environment(name, environ)) is not None}
    if path is None:
        path = flags.get("config") or env.get("config")
    data = _read_file(path)
    values: dict[str, Any] = {}
    sources = {name: "default" for name in OPTIONS}
    for name, value in data.get("server", {}).items():
        values[name], sources[name] = _typed(name, value), "file [server]"
    for name, value in env.items():
        values[name], sources[name] = _coerce(name, value), f"environment ({OPTIONS[name].env})"
    for name, value in flags.items():
        values[name], sources[name] = _coerce(name, value), "flag"
    if path is not None:
        values["config"] = os.path.abspath(path)
    if "issuer" not in values and ("host" in values or "port" in values):
        scheme = "https" if values.get("ssl_certfile") else "http"
        values["issuer"] = f"{scheme}://{values.get('host', '127.0.0.1')}:{values.get('port', 8000)}"
        sources["issuer"] = "derived from host and port"
    try:
        policy = policy_from_config(data.get("policy", {}))
    except PolicyError as exc:
        raise ConfigError(str(exc)) from exc
    settings = _settings_from(data.get("settings", {}))
    if values.get("auto_approve"):
        settings = replace(settings, auto_approve=values["auto_approve"])
    config = ServerConfig(policy=policy, settings=settings, **values).validate()
    return Loaded(config, sources, data)


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ServerConfig:
    """``read_config(...).config``."""
    return read_config(path, overrides, environ).config


def to_environment(config: ServerConfig) -> dict[str, str]:
    """The ``JARMOR_*`` variables that rebuild ``config``'s options (``jarmor serve`` hands them to its workers,
    which read the file's ``[settings]`` and ``[policy]`` again through ``JARMOR_CONFIG``)."""
    out: dict[str, str] = {}
    for opt in OPTIONS.values():
        value = getattr(config, opt.name)
        if isinstance(value, tuple):
            if value:
                out[opt.env] = ",".join(value)
        elif value is not None:
            out[opt.env] = str(value)
    return out

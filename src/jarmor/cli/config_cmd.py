"""``jarmor config check FILE`` and ``jarmor config show``: the configuration, validated without starting
anything, and the effective values with where each came from (flag, environment, file, default)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, fields
from typing import Any

from ..config import ENVIRONMENT_ONLY, OPTIONS, ConfigError, Loaded, from_environment, load_config
from ..protocol.context import Settings
from .common import add_server_options, fail, group, read_config_from, sqlite_path

_SECRET_SETTINGS = {"metrics_token"}


def _shown(name: str, value: Any, *, secret: bool) -> Any:
    if value is None:
        return None
    if secret:
        return "(set, hidden)"
    if name in ("database", "redis") and isinstance(value, str):
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            return make_url(value).render_as_string(hide_password=True)
        except ArgumentError:
            return "(unparseable URL)"
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _environment_only() -> dict[str, dict[str, Any]]:
    out = {}
    for opt in ENVIRONMENT_ONLY.values():
        value = from_environment(opt.name)
        out[f"environment.{opt.name}"] = {
            "value": _shown(opt.name, value, secret=opt.secret),
            "source": f"environment ({opt.env})" if value is not None else "default",
        }
    return out


def effective(loaded: Loaded) -> dict[str, dict[str, Any]]:
    """Every option and setting: its value (secrets hidden) and its source."""
    config, file_data = loaded.config, loaded.file
    out: dict[str, dict[str, Any]] = {}
    for name, opt in OPTIONS.items():
        shown = _shown(name, getattr(config, name), secret=opt.secret)
        out[f"server.{name}"] = {"value": shown, "source": loaded.sources[name]}
    out.update(_environment_only())
    in_file = file_data.get("settings", {})
    for f in fields(Settings):
        value = getattr(config.settings, f.name)
        out[f"settings.{f.name}"] = {
            "value": _shown(f.name, value, secret=f.name in _SECRET_SETTINGS),
            "source": "file [settings]" if f.name in in_file else "default",
        }
    policy = file_data.get("policy", {})
    for name, tier in config.policy.tiers.items():
        data = asdict(tier)
        data["controls"] = sorted(c.value for c in tier.controls)
        data.pop("name")
        out[f"policy.tiers.{name}"] = {
            "value": data, "source": "file [policy.tiers]" if name in policy.get("tiers", {}) else "default"
        }
    out["policy.scopes"] = {"value": dict(config.policy.scope_tiers), "source": "file" if "scopes" in policy else "default"}
    out["policy.default_client_tier"] = {
        "value": config.policy.default_client_tier,
        "source": "file" if "default_client_tier" in policy else "default",
    }
    return out


def cmd_config_check(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.file, environ={})
    except ConfigError as exc:
        fail(f"{args.file}: {exc}", code=1)
    print(f"{args.file}: valid (issuer {config.issuer}, {len(config.policy.tiers)} tiers, "
          f"{len(config.policy.scope_tiers)} scope tier(s))")
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    loaded = read_config_from(args)
    path = sqlite_path(loaded.config.database)
    if path is not None:
        blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            fail(f"database: {path} cannot hold a database ({blocking} is not a directory)")
    shown = effective(loaded)
    if args.format == "json":
        print(json.dumps(shown, indent=2, sort_keys=True))
        return 0
    width = max(len(k) for k in shown)
    for key, item in shown.items():
        value = json.dumps(item["value"], sort_keys=True, ensure_ascii=True)
        print(f"{key.ljust(width)}  {value}  ({item['source']})")
    return 0


def add_config_commands(sub: Any) -> None:
    config = group(sub, "config", "validate and show the configuration")
    c = config.add_parser("check", help="validate a configuration file without starting anything")
    c.add_argument("file", metavar="FILE")
    c.set_defaults(func=cmd_config_check)
    s = config.add_parser("show", help="the effective configuration and where each value came from")
    add_server_options(s)
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.set_defaults(func=cmd_config_show)

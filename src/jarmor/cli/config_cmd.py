"""``jarmor config check FILE`` and ``jarmor config show``: the configuration, validated without starting
anything, and the effective values with where each came from (flag, environment, file, default)."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, fields
from typing import Any

from ..config import OPTIONS, ConfigError, ServerConfig, load_config
from ..protocol.context import Settings
from .common import add_server_options, config_from, fail, group, sqlite_path

_SECRET = {"registration_token", "metrics_token"}


def _shown(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _SECRET:
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


def effective(args: argparse.Namespace, config: ServerConfig) -> dict[str, dict[str, Any]]:
    """Every option and setting: its value (secrets hidden) and its source."""
    file_data: dict[str, Any] = {}
    if args.config:
        import tomllib
        from pathlib import Path

        file_data = tomllib.loads(Path(args.config).read_text())
    out: dict[str, dict[str, Any]] = {}
    for name in OPTIONS:
        if getattr(args, name, None) is not None:
            source = "flag"
        elif os.environ.get("JARMOR_" + name.upper()):
            source = "environment (JARMOR_" + name.upper() + ")"
        elif name in file_data.get("server", {}):
            source = "file [server]"
        else:
            source = "default"
        out[f"server.{name}"] = {"value": _shown(name, getattr(config, name)), "source": source}
    in_file = file_data.get("settings", {})
    for f in fields(Settings):
        value = getattr(config.settings, f.name)
        out[f"settings.{f.name}"] = {
            "value": _shown(f.name, value), "source": "file [settings]" if f.name in in_file else "default"
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
    config = config_from(args)
    path = sqlite_path(config.database)
    if path is not None:
        blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            fail(f"database: {path} cannot hold a database ({blocking} is not a directory)")
    shown = effective(args, config)
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

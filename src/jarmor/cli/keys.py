"""``jarmor keys list | rotate | retire``: the server key lifecycle, driven through the key store.

Running servers pick changes up on their next keyring refresh (``key_refresh_interval``), so these commands
work against a live deployment with any number of workers or nodes. Use the same ``--config`` as the server:
the rotation timings come from its ``[settings]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..config import ServerConfig
from ..server.keyprotect import KeyProtectionError, KeyProtector
from ..server.keys import (
    KeyLifecycleError,
    KeyStatus,
    KeyTimings,
    describe_keys,
    format_time,
    key_table,
    retire_key,
    rotate_keys,
    sweep_keys,
)
from ..store.base import KeyStore
from .common import add_state_options, config_from, fail, open_state

T = TypeVar("T")


def _run(config: ServerConfig, action: Callable[[KeyStore, KeyProtector, KeyTimings], Awaitable[T]]) -> T:
    async def run() -> T:
        protector = KeyProtector.from_env()
        store = open_state(config)
        try:
            return await action(
                store.keys, protector, KeyTimings.from_settings(config.settings, config.policy)
            )
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except (KeyLifecycleError, KeyProtectionError) as exc:
        fail(str(exc))


def _when(ts: int | None, now: int) -> str:
    if ts is None:
        return "-"
    delta = ts - now
    rel = f"in {delta} s" if delta > 0 else f"{-delta} s ago" if delta < 0 else "now"
    return f"{format_time(ts)} ({rel})"


def cmd_keys_list(args: argparse.Namespace) -> int:
    config = config_from(args)
    now = int(time.time())

    async def action(store: KeyStore, protector: KeyProtector, timings: KeyTimings) -> list[KeyStatus]:
        changed = await sweep_keys(store, timings, now=now)
        for rec in changed:
            print(f"jarmor: key {rec.kid} ({rec.alg}) is now {rec.state}", file=sys.stderr)
        records = await store.list()
        try:
            for rec in records:
                if rec.state != "retired":
                    protector.open(rec.private_jwk)
        except KeyProtectionError as exc:
            print(f"jarmor: warning: {exc}", file=sys.stderr)
        return describe_keys(records, now)

    statuses = _run(config, action)
    if not args.all:
        statuses = [s for s in statuses if s.role != "retired"]
    if args.json:
        print(json.dumps(key_table(statuses), indent=2))
        return 0
    if not statuses:
        print("no server keys yet: the server generates them when it first starts")
        return 0
    rows = [("KID", "ALG", "USE", "STATE", "ROLE", "JWKS", "ACTIVE FROM", "RETIRES")]
    for s in statuses:
        r = s.record
        rows.append(
            (
                r.kid,
                r.alg,
                r.use,
                r.state,
                s.role,
                "yes" if s.published else "no",
                _when(r.active_at, now),
                _when(r.retired_at, now),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    config = config_from(args)
    now = int(time.time())

    async def action(store: KeyStore, protector: KeyProtector, timings: KeyTimings) -> Any:
        return await rotate_keys(store, protector, timings, algs=args.alg or None, now=now)

    rotations, notes = _run(config, action)
    out: list[dict[str, Any]] = []
    for rot in rotations:
        entry = {
            "alg": rot.alg,
            "new_kid": rot.new.kid,
            "active_at": rot.new.active_at,
            "replaced": [{"kid": r.kid, "retired_at": r.retired_at} for r in rot.replaced],
        }
        out.append(entry)
        if not args.json:
            old = (
                ", ".join(f"{r.kid} retires {_when(r.retired_at, now)}" for r in rot.replaced)
                or "no key replaced"
            )
            print(f"{rot.alg}: new key {rot.new.kid} takes over {_when(rot.new.active_at, now)}; {old}")
    for note in notes:
        print(f"jarmor: skipped {note}", file=sys.stderr)
    if not rotations and not notes and not args.json:
        print("nothing to rotate: the server generates its keys when it first starts")
    if args.json:
        print(json.dumps({"rotations": out, "skipped": notes}, indent=2))
    return 0


def cmd_keys_retire(args: argparse.Namespace) -> int:
    config = config_from(args)

    async def action(store: KeyStore, protector: KeyProtector, timings: KeyTimings) -> list[str]:
        return await retire_key(store, protector, timings, args.kid, force=args.force)

    for line in _run(config, action):
        print(line)
    return 0


def add_keys_commands(sub: Any) -> None:
    keys = sub.add_parser("keys", help="list, rotate and retire the server's keys").add_subparsers(
        dest="sub", required=True
    )
    p = keys.add_parser("list", help="the server keys, their role and whether the JWKS publishes them")
    add_state_options(p)
    p.add_argument("--all", action="store_true", help="include retired keys")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_keys_list)

    p = keys.add_parser(
        "rotate", help="start a rotation: publish new keys now, sign with them after the publish delay"
    )
    add_state_options(p)
    p.add_argument("--alg", action="append", metavar="ALG", help="only this algorithm (repeatable)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_keys_rotate)

    p = keys.add_parser("retire", help="retire a key now (refused while it may still be needed)")
    add_state_options(p)
    p.add_argument("kid")
    p.add_argument(
        "--force",
        action="store_true",
        help="retire even if still needed (compromised key); a replacement takes over at once",
    )
    p.set_defaults(func=cmd_keys_retire)

"""``jarmor keys list | rotate | retire``: the server key lifecycle, driven through the key store.

Running servers pick changes up on their next keyring refresh (``key_refresh_interval``), so these commands
work against a live deployment with any number of workers or nodes. Use the same ``--config`` as the server:
the rotation timings come from its ``[settings]``. Rotations and retirements are recorded in the audit log
(``--by``, default ``cli:<login name>``).
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
from ..governance.terminal import table
from ..server.keyprotect import KeyProtectionError, KeyProtector
from ..server.keys import (
    DEFAULT_ENCRYPTION_ALGS,
    DEFAULT_SIGNING_ALGS,
    SECRET_ALG,
    KeyLifecycleError,
    KeyStatus,
    KeyTimings,
    describe_keys,
    format_time,
    key_table,
    retire_key,
    rotate_keys,
    seal_keys,
    sweep_keys,
)
from ..store.base import AdminEvent, KeyStore, Store
from .common import (
    actor,
    add_actor_option,
    add_format_option,
    add_state_options,
    config_from,
    fail,
    group,
    open_state,
)

T = TypeVar("T")

ALGS = (*DEFAULT_SIGNING_ALGS, *DEFAULT_ENCRYPTION_ALGS, SECRET_ALG)


def _run(
    config: ServerConfig,
    action: Callable[[KeyStore, KeyProtector, KeyTimings], Awaitable[T]],
    audit: Callable[[Store, T], Awaitable[None]] | None = None,
) -> T:
    async def run() -> T:
        protector = KeyProtector.from_env()
        store = open_state(config)
        try:
            result = await action(
                store.keys, protector, KeyTimings.from_settings(config.settings, config.policy)
            )
            if audit is not None:
                await audit(store, result)
            return result
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
    if _json(args):
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
    print(table(rows))
    return 0


def _json(args: argparse.Namespace) -> bool:
    """``--format json`` (``--json`` is its deprecated spelling)."""
    return bool(args.format == "json" or args.json)


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    config = config_from(args)
    now, by = int(time.time()), actor(args)

    async def action(store: KeyStore, protector: KeyProtector, timings: KeyTimings) -> Any:
        return await rotate_keys(store, protector, timings, algs=args.alg or None, now=now)

    async def audit(store: Store, result: Any) -> None:
        for rot in result[0]:
            await store.audit.append(AdminEvent(
                at=now, actor=by, action="key.rotate", target=f"key:{rot.new.kid}",
                details={"alg": rot.alg, "active_at": rot.new.active_at,
                         "replaced": [{"kid": r.kid, "retired_at": r.retired_at} for r in rot.replaced]},
            ))

    rotations, notes = _run(config, action, audit)
    out: list[dict[str, Any]] = []
    for rot in rotations:
        entry = {
            "alg": rot.alg,
            "new_kid": rot.new.kid,
            "active_at": rot.new.active_at,
            "replaced": [{"kid": r.kid, "retired_at": r.retired_at} for r in rot.replaced],
        }
        out.append(entry)
        if not _json(args):
            old = (
                ", ".join(f"{r.kid} retires {_when(r.retired_at, now)}" for r in rot.replaced)
                or "no key replaced"
            )
            print(f"{rot.alg}: new key {rot.new.kid} takes over {_when(rot.new.active_at, now)}; {old}")
    for note in notes:
        print(f"jarmor: skipped {note}", file=sys.stderr)
    if not rotations and not notes and not _json(args):
        print("nothing to rotate: the server generates its keys when it first starts")
    if _json(args):
        print(json.dumps({"rotations": out, "skipped": notes}, indent=2))
    return 0


def cmd_keys_retire(args: argparse.Namespace) -> int:
    config = config_from(args)
    now, by = int(time.time()), actor(args)

    async def action(store: KeyStore, protector: KeyProtector, timings: KeyTimings) -> list[str]:
        return await retire_key(store, protector, timings, args.kid, force=args.force)

    async def audit(store: Store, done: list[str]) -> None:
        await store.audit.append(AdminEvent(
            at=now, actor=by, action="key.retire.force" if args.force else "key.retire", target=f"key:{args.kid}",
            details={"force": args.force, "done": done},
        ))

    for line in _run(config, action, audit):
        print(line)
    return 0


def cmd_keys_seal(args: argparse.Namespace) -> int:
    config = config_from(args)
    now, by = int(time.time()), actor(args)

    async def action(store: KeyStore, protector: KeyProtector, timings: KeyTimings) -> list[str]:
        return await seal_keys(store, protector)

    async def audit(store: Store, done: list[str]) -> None:
        if done:
            await store.audit.append(AdminEvent(at=now, actor=by, action="key.seal", target="keys",
                                                details={"kids": done}))

    done = _run(config, action, audit)
    print(f"sealed {len(done)} key(s) with the current key-encryption key" if done else "every key is sealed already")
    return 0


def _deprecated_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # deprecated: --format json


def add_keys_commands(sub: Any) -> None:
    keys = group(sub, "keys", "list, rotate and retire the server's keys")
    p = keys.add_parser("list", help="the server keys, their role and whether the JWKS publishes them")
    add_state_options(p)
    p.add_argument("--all", action="store_true", help="include retired keys")
    add_format_option(p)
    _deprecated_json(p)
    p.set_defaults(func=cmd_keys_list)

    p = keys.add_parser(
        "rotate", help="start a rotation: publish new keys now, sign with them after the publish delay"
    )
    add_state_options(p)
    p.add_argument("--alg", action="append", choices=ALGS, metavar="ALG",
                   help=f"only this algorithm (repeatable): {', '.join(ALGS)}")
    add_format_option(p)
    _deprecated_json(p)
    add_actor_option(p)
    p.set_defaults(func=cmd_keys_rotate)

    p = keys.add_parser("retire", help="retire a key now (refused while it may still be needed)")
    add_state_options(p)
    p.add_argument("kid")
    p.add_argument(
        "--force",
        action="store_true",
        help="retire even if still needed (compromised key); a replacement takes over at once",
    )
    add_actor_option(p)
    p.set_defaults(func=cmd_keys_retire)

    p = keys.add_parser("seal", help="seal every key with JARMOR_KEY_ENCRYPTION_KEY (turning sealing on, or "
                                     "after rotating it with JARMOR_KEY_ENCRYPTION_KEY_PREVIOUS)")
    add_state_options(p)
    add_actor_option(p)
    p.set_defaults(func=cmd_keys_seal)

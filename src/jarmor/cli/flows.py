"""``jarmor flows [export | verify]``, ``jarmor report`` and ``jarmor policy check``: flow integrity records.

They read the database directly, beside running servers (same ``--config`` / ``--database``). Servers write
records in batches a fraction of a second after each hop (``flow_record_interval``), so the newest hop of a
flow in progress may not be visible yet.

Exit codes: ``flows verify`` exits 1 when the chain fails verification, ``policy check`` 1 when the proposed
policy would break a registration or a recorded flow; 2 is a usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from ..config import ServerConfig
from ..governance import render
from ..governance.archive import ArchiveError, ArchiveResult, archive, archived_checkpoints, archived_rows
from ..governance.chain import parse_anchor, verify
from ..governance.checkpoints import CheckpointCheck
from ..governance.policy_check import check_policy
from ..governance.query import OUTCOME_HELP, FlowQuery, QueryError, find_flows, parse_since
from ..governance.reports import DAY, capabilities, load_report
from ..governance.terminal import scrub
from ..protocol.policy import PolicyError, policy_from_config
from ..server.keyprotect import KeyProtectionError, KeyProtector
from ..server.keys import public_signing_keys
from ..store.base import AdminEvent, Store
from .common import actor, add_actor_option, config_from, fail, group, issuer_of, with_store
from .progress import Progress

T = TypeVar("T")


def _run(config: ServerConfig, action: Callable[[Store], Awaitable[T]]) -> T:
    return with_store(config, action, expected=(QueryError,))


def _state_options(p: argparse.ArgumentParser, *, sub: bool = False) -> None:
    """``--config`` / ``--database``; on a sub-command they must not reset what the parent parsed."""
    default = argparse.SUPPRESS if sub else None
    p.add_argument("--config", metavar="FILE", default=default, help="TOML configuration file")
    p.add_argument("--database", metavar="URL", default=default, help="database URL (default: sqlite:///jarmor.db)")


def _since(args: argparse.Namespace, now: int, option: str = "since") -> int | None:
    if not getattr(args, option, None):
        return None
    try:
        return parse_since(getattr(args, option), now)
    except QueryError as exc:
        fail(str(exc))


# -- jarmor flows --------------------------------------------------------------------------------------------


def cmd_flows(args: argparse.Namespace) -> int:
    config = config_from(args)
    now = int(time.time())
    query = FlowQuery(client_id=args.client, since=_since(args, now), outcome=args.outcome, limit=args.limit)

    async def action(store: Store) -> list[Any]:
        return await find_flows(store.flows, query, now)

    flows = _run(config, action)
    if args.format == "json":
        print(json.dumps([f.as_dict() for f in flows], indent=2))
    elif flows:
        print(render.flows_table(scrub(flows)))
    else:
        print("no flow records match", file=sys.stderr)
    return 0


def cmd_flows_export(args: argparse.Namespace) -> int:
    """JSON lines, one chained record per line in chain order: ``seq``, ``hash``, ``prev_hash`` and the
    record's hashed body members (a SIEM can re-verify the chain from them, and keep the last hash as an
    anchor); ``--after-seq`` continues an earlier export."""
    config = config_from(args)
    since = _since(args, int(time.time()))
    out = sys.stdout.buffer

    shown = Progress("exporting records")

    async def action(store: Store) -> int:
        n = 0
        after = args.after_seq
        while True:
            shown.update(n)
            rows = await store.flows.scan(after_seq=after, since=since, limit=5000)
            for row in rows:
                body = orjson.loads(row.body)
                line = {**body, "seq": row.seq, "hash": row.hash, "prev_hash": row.prev_hash}
                out.write(orjson.dumps(line, option=orjson.OPT_SORT_KEYS) + b"\n")
                n += 1
            if len(rows) < 5000:
                return n
            after = rows[-1].seq

    try:
        n = _run(config, action)
    finally:
        shown.done()
    out.flush()
    print(f"exported {n} record(s)", file=sys.stderr)
    return 0


def cmd_flows_verify(args: argparse.Namespace) -> int:
    config = config_from(args)
    anchors: dict[int, str] = {}
    for text in args.anchor or ():
        try:
            seq, digest = parse_anchor(text)
        except ValueError as exc:
            fail(str(exc))
        anchors[seq] = digest

    settings = config.settings
    grace = 2 * settings.flow_checkpoint_interval + settings.key_refresh_interval + 60
    archives = [Path(a) for a in args.archive or ()]
    for path in archives:
        if not path.is_file():
            fail(f"no archive file {path}")

    async def action(store: Store) -> Any:
        check = None
        if settings.flow_checkpoint_interval > 0:
            try:
                keys = await public_signing_keys(store.keys, KeyProtector.from_env())
            except KeyProtectionError as exc:
                fail(f"cannot read the server keys to check the signed checkpoints: {exc}")
            check = CheckpointCheck(keys, grace=grace)
            try:
                check.checkpoints.update((cp.seq, cp) for cp in archived_checkpoints(archives))
            except ArchiveError as exc:
                fail(str(exc))
        shown = Progress("verifying records")
        try:
            return await verify(store.flows, anchors=anchors, checkpoints=check, archived=archived_rows(archives),
                                progress=shown.update)
        finally:
            shown.done()

    try:
        report = _run(config, action)
    except ArchiveError as exc:
        fail(str(exc))
    if args.format == "json":
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(render.verify_text(scrub(report)))
    return 0 if report.ok else 1


def cmd_flows_archive(args: argparse.Namespace) -> int:
    """Move the records written before ``--before`` (up to the last signed checkpoint before it) to a file."""
    config = config_from(args)
    before = _since(args, int(time.time()), option="before")
    assert before is not None
    by = actor(args)
    target = Path(args.output)
    if target.exists():
        fail(f"{target} exists already: archive to a new file")
    try:
        out = target.open("xb")
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror or exc}")

    shown = Progress("archiving records")

    async def action(store: Store) -> ArchiveResult:
        result = await archive(store.flows, before, out, progress=shown.update)
        await store.audit.append(AdminEvent(
            at=int(time.time()), actor=by, action="flows.archive", target="flows",
            details={"through_seq": result.through_seq, "records": result.records, "file": str(target)},
        ))
        return result

    try:
        with out:
            try:
                result = _run(config, action)
            finally:
                shown.done()
    except ArchiveError as exc:
        target.unlink(missing_ok=True)
        fail(str(exc), code=1)
    except SystemExit:  # refused (no database, ...): leave no empty archive behind
        target.unlink(missing_ok=True)
        raise
    print(
        f"archived records 1-{result.through_seq} ({result.records} record(s), {result.checkpoints} signed "
        f"checkpoint(s)) to {target}; verify later with: jarmor flows verify --archive {target}",
        file=sys.stderr,
    )
    return 0


# -- jarmor report ---------------------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    config = config_from(args)
    now = int(time.time())

    async def action(store: Store) -> Any:
        caps = capabilities(config.policy, config.settings, config.issuer, await store.keys.list())
        return await load_report(
            store, now=now, policy=config.policy, caps=caps, window_days=args.days, stale_days=args.stale_days,
            key_age_days=args.key_age_days,
        )

    report = _run(config, action)
    if args.format == "json":
        text = json.dumps(report.as_dict(), indent=2)
    elif args.format == "html":
        text = render.report_html(report, issuer=issuer_of(args, config))
    else:
        text = render.report_text(scrub(report))
    if args.output:
        try:
            Path(args.output).write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write the report to {args.output}: {exc.strerror or exc}")
        print(f"report written to {args.output}", file=sys.stderr)
    else:
        print(text)
    return 0


# -- jarmor policy check ---------------------------------------------------------------------------------------


def load_proposed(path: str) -> tuple[Any, frozenset[str] | None]:
    """The ``[policy]`` table of ``path`` (a whole server configuration or a policy-only file), and the
    ``[settings] scopes`` it names, if any."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        fail(f"cannot read {path}: {exc}")
    table = data.get("policy")
    if table is None:
        table = {k: data[k] for k in ("default_client_tier", "scopes", "tiers") if k in data}
    try:
        policy = policy_from_config(table)
    except (PolicyError, TypeError, ValueError) as exc:
        fail(f"{path}: {exc}")
    scopes = (data.get("settings") or {}).get("scopes")
    return policy, frozenset(scopes) if isinstance(scopes, list) else None


def cmd_policy_check(args: argparse.Namespace) -> int:
    from dataclasses import replace

    config = config_from(args)
    proposed, scopes = load_proposed(args.proposed)
    settings = replace(config.settings, scopes=scopes) if scopes is not None else config.settings
    now = int(time.time())

    async def action(store: Store) -> Any:
        keys = await store.keys.list()
        flows = await find_flows(store.flows, FlowQuery(since=now - args.days * DAY, limit=args.limit), now)
        return check_policy(
            current=config.policy,
            proposed=proposed,
            clients=await store.clients.list(),
            flows=flows,
            caps_current=capabilities(config.policy, config.settings, config.issuer, keys),
            caps_proposed=capabilities(proposed, settings, config.issuer, keys),
            progress=shown.update,
        )

    shown = Progress("judging registrations and flows")
    try:
        result = _run(config, action)
    finally:
        shown.done()
    if args.format == "json":
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(render.policy_text(scrub(result)))
    return 1 if result.breaks else 0


# -- registration ----------------------------------------------------------------------------------------------


def add_flows_commands(sub: Any) -> None:
    """Register ``jarmor flows``, ``jarmor report`` and ``jarmor policy`` on the top-level subparsers."""
    p = sub.add_parser("flows", help="flow integrity records: list, export, verify",
                       description="List flow integrity records, one row per authorization transaction.")
    _state_options(p)
    p.add_argument("--client", metavar="ID", help="only flows of this client")
    p.add_argument("--since", metavar="DATE|DURATION", help="only flows active since (2025-01-31, 12h, 7d)")
    p.add_argument("--outcome", metavar="OUTCOME", help=OUTCOME_HELP)
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--limit", type=int, default=200, help="at most this many flows, newest first (200)")
    p.set_defaults(func=cmd_flows)
    flows = p.add_subparsers(dest="flows_command", required=False, metavar="{export,verify,archive}")

    e = flows.add_parser("export", help="write every record as JSON lines (for a SIEM)")
    _state_options(e, sub=True)
    e.add_argument("--since", metavar="DATE|DURATION", help="only records written since")
    e.add_argument("--after-seq", type=int, default=0, metavar="N", help="only records after record N")
    e.set_defaults(func=cmd_flows_export)

    v = flows.add_parser("verify", help="check the hash chain; exit 1 on an edited, missing or reordered record")
    _state_options(v, sub=True)
    v.add_argument("--anchor", action="append", metavar="SEQ:HASH",
                   help="a record hash kept outside the database (from an earlier verify or export)")
    v.add_argument("--archive", action="append", metavar="FILE",
                   help="archive files from `flows archive`, oldest first: verified with the database as one chain")
    v.add_argument("--format", choices=("table", "json", "text"), default="table",
                   help="output format: table (default; text is its old name) or json")
    v.set_defaults(func=cmd_flows_verify)

    a = flows.add_parser("archive", help="move records older than a date to a JSON lines file (retention)")
    _state_options(a, sub=True)
    a.add_argument("--before", required=True, metavar="DATE|DURATION",
                   help="archive records written before (2025-01-31, 90d); the cut is the last signed checkpoint")
    a.add_argument("-o", "--output", required=True, metavar="FILE", help="a new file to write")
    add_actor_option(a)
    a.set_defaults(func=cmd_flows_archive)

    r = sub.add_parser("report", help="governance report: stale clients, old keys, drift, exposure, coverage")
    _state_options(r)
    r.add_argument("--format", choices=("table", "json", "html"), default="table")
    r.add_argument("--stale-days", type=int, default=90, metavar="N", help="stale: no flow in N days (90)")
    r.add_argument("--key-age-days", type=int, default=180, metavar="N", help="report server keys older (180)")
    r.add_argument("--days", type=int, default=30, metavar="N", help="coverage and trends over N days (30)")
    r.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    r.add_argument("--issuer", metavar="URL", help="the server's issuer, shown in the HTML report")
    r.set_defaults(func=cmd_report)

    pol = group(sub, "policy", "policy tools")
    c = pol.add_parser("check", help="dry-run a proposed [policy] against registrations and recorded flows")
    _state_options(c)
    c.add_argument("proposed", metavar="CONFIG.toml", help="a configuration file with the proposed [policy]")
    c.add_argument("--days", type=int, default=30, metavar="N", help="recorded flows of the last N days (30)")
    c.add_argument("--limit", type=int, default=50_000, metavar="N", help="at most N recent flows (50000)")
    c.add_argument("--format", choices=("table", "json"), default="table")
    c.set_defaults(func=cmd_policy_check)

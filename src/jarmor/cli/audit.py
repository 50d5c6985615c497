"""``jarmor audit ISSUER --client FILE ...``: probe a live authorization server and report, per control and
protocol hygiene rule, what it does (issue 16; ``docs/audit.md``).

Each client is judged against its own tier: the ``tier`` member of its ``--client`` file, else ``--tier``.
Exit codes: 0 done (and every client judged against a tier meets it and violates nothing); 1 a client misses
its tier or has a check ``violated``; 2 a usage or audit error (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

from ..client.config import check_url
from ..config import from_environment
from ..protocol.policy import DEFAULT_TIERS
from .common import fail, one_line

FORMATS = ("table", "json", "html", "junit")


class _UsageError(ValueError):
    pass


def cmd_audit(args: argparse.Namespace) -> int:
    from ..audit import (
        CHECKS,
        AuditAborted,
        ClientFileError,
        LoginScriptError,
        load_client,
        load_login_script,
        render_html,
        render_json,
        render_junit,
        render_table,
        run_audit,
    )

    try:
        issuer = check_url(args.issuer, what="ISSUER", allow_insecure_http=True, error=_UsageError)
    except _UsageError as exc:
        fail(str(exc))
    if args.max_requests < 1:
        fail("--max-requests must be at least 1")
    if not 0 < args.rate <= 1000:
        fail("--rate must be between 0 and 1000 requests per second")
    unknown = [c for c in args.check or () if c not in CHECKS]
    if unknown:
        fail(f"unknown check {unknown[0][:64]!r} (see docs/audit.md)")
    token = args.registration_token or from_environment("audit_registration_token")
    if not args.client and not token:
        fail("give --client FILE, or --registration-token so the audit registers its own client")
    try:
        clients = [load_client(path) for path in args.client or ()]
        script = load_login_script(args.login_script) if args.login_script else None
        mix_up_client = load_client(args.mix_up_client) if args.mix_up_client else None
    except (ClientFileError, LoginScriptError) as exc:
        fail(str(exc)[:300])
    clients = [c if c.tier is not None else replace(c, tier=args.tier) for c in clients]
    mix_up = _mix_up_issuer(args, issuer, mix_up_client is not None)
    try:
        report = run_audit(
            issuer,
            clients,
            registration_token=token,
            self_register=not clients,
            self_register_tier=args.tier,
            max_requests=args.max_requests,
            rate=args.rate,
            only=frozenset(args.check) if args.check else None,
            follow_interactions=args.follow_interactions,
            login_script=script,
            mix_up_issuer=mix_up,
            mix_up_client=mix_up_client,
        )
    except AuditAborted as exc:
        fail(f"audit stopped: {str(exc)[:300]}")
    renderers = {"table": render_table, "json": render_json, "html": render_html, "junit": render_junit}
    text = renderers[args.format](report)
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as out:
                out.write(text)
        except OSError as exc:
            fail(f"cannot write {args.output}: {exc.strerror}")
    else:
        sys.stdout.write(text)
    failing = report.failing()
    for client_id, why in failing.items():
        print(f"jarmor: {one_line(client_id[:80])}: {why}" if len(report.client_ids) > 1 else f"jarmor: {why}",
              file=sys.stderr)
    return 1 if failing else 0


def _mix_up_issuer(args: argparse.Namespace, issuer: str, with_client: bool) -> str | None:
    if not args.mix_up_issuer:
        if with_client:
            fail("--mix-up-client needs --mix-up-issuer")
        return None
    try:
        mix_up = check_url(args.mix_up_issuer, what="--mix-up-issuer", allow_insecure_http=True, error=_UsageError)
    except _UsageError as exc:
        fail(str(exc))
    if mix_up == issuer:
        fail("--mix-up-issuer must differ from ISSUER")
    return mix_up


def add_audit_command(sub: Any) -> None:
    """Register ``jarmor audit`` on the top-level subparsers."""
    p = sub.add_parser("audit", help="probe a live authorization server and report what it enforces")
    p.add_argument("issuer", metavar="ISSUER", help="the issuer identifier (its discovery document is read)")
    p.add_argument("--client", action="append", metavar="FILE",
                   help="a test client (JSON: client_id, redirect_uri, scope, auth method, key or secret); repeatable")
    p.add_argument("--registration-token", metavar="TOKEN",
                   help="initial access token: register (and afterwards delete) a probe client; "
                        "also lets https_redirect_uris be checked (or JARMOR_AUDIT_REGISTRATION_TOKEN)")
    p.add_argument("--tier", choices=sorted(DEFAULT_TIERS, key=lambda n: DEFAULT_TIERS[n].rank),
                   help="judge every client without a tier of its own (the file's \"tier\") against this tier: "
                        "exit 1 unless the server enforces it for each and violates nothing")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report here instead of stdout")
    p.add_argument("--max-requests", type=int, default=300, metavar="N", help="request budget (default 300)")
    p.add_argument("--rate", type=float, default=5.0, metavar="PER_SECOND",
                   help="at most this many requests per second (default 5)")
    p.add_argument("--follow-interactions", action="store_true",
                   help="follow the server's redirects to its own interaction pages (GET, same origin, cookies "
                        "kept) so a test deployment that signs in by script completes the authorization")
    p.add_argument("--login-script", metavar="FILE",
                   help="sign in and consent by script (JSON: form fields and values to submit on the server's "
                        "pages; implies --follow-interactions; see docs/audit.md)")
    p.add_argument("--mix-up-issuer", metavar="URL",
                   help="a second issuer the client also uses: iss_mix_up checks responses are refused for it")
    p.add_argument("--mix-up-client", metavar="FILE",
                   help="this client's registration at --mix-up-issuer: mix_up_code_elsewhere redeems a code of "
                        "ISSUER there (that issuer's discovered endpoints are then contacted too)")
    p.add_argument("--check", action="append", metavar="NAME", help="run only this check (repeatable)")
    p.set_defaults(func=cmd_audit)

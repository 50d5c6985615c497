"""``jarmor audit``: probe a live authorization server with test clients and report, per control and per
protocol hygiene rule, what it does (``enforced``, ``optional``, ``absent``, ``violated``, ``not_run``).

The audit is a client: it uses ``jarmor.client``'s building blocks (request objects, assertions, PKCE, JARM
checks) and ``jarmor.jose`` — never the server's internals — and talks only through ``AuditHttp`` (bounded,
rate-limited, confined to the issuer's discovered endpoints, logged without secrets). ``docs/audit.md``
describes every check.
"""

from .clients import AuditClient, ClientFileError, load_client, parse_client
from .engine import DEFAULT_MAX_REQUESTS, DEFAULT_RATE, run_audit
from .model import Finding, Report, Verdict
from .render import render_html, render_json, render_junit, render_table
from .signin import LoginScript, LoginScriptError, load_login_script
from .suite import CHECKS
from .tiers import meets, tier_met
from .transport import AuditAborted, AuditHttp, BudgetExhausted

__all__ = [
    "CHECKS",
    "DEFAULT_MAX_REQUESTS",
    "DEFAULT_RATE",
    "AuditAborted",
    "AuditClient",
    "AuditHttp",
    "BudgetExhausted",
    "ClientFileError",
    "Finding",
    "LoginScript",
    "LoginScriptError",
    "Report",
    "Verdict",
    "load_client",
    "load_login_script",
    "meets",
    "parse_client",
    "render_html",
    "render_json",
    "render_junit",
    "render_table",
    "run_audit",
    "tier_met",
]

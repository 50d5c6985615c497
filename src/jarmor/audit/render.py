"""Report formats: JSON (the issue-16 document), a text table, JUnit XML (one test case per check and
client, for CI) and a self-contained HTML page (autoescaped, loads nothing)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from jinja2 import Environment, select_autoescape

from jarmor.protocol.policy import DEFAULT_TIERS

from .model import Report, Verdict
from .tiers import required_controls

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def clean(text: str) -> str:
    """Neutralise control characters and line breaks (server-supplied values reach the table)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def render_table(report: Report) -> str:
    rows = [("CLIENT", "CHECK", "VERDICT", "EVIDENCE")]
    rows += [(clean(f.client_id), f.check, f.verdict.value, clean(f.evidence)) for f in report.findings]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"issuer: {clean(report.issuer)}   started: {report.started_at}   requests: {report.requests_sent}"]
    failing = report.failing()
    for cid, met in report.tiers_met.items():
        wanted = report.tiers_required.get(cid)
        judged = f" (required: {wanted}, {'NOT MET' if cid in failing else 'met'})" if wanted else ""
        lines.append(f"tier met by {clean(cid)}: {met or 'none'}{judged}")
    lines.append("")
    lines += ["  ".join([*(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)), r[3]]).rstrip() for r in rows]
    return "\n".join(lines) + "\n"


def _required(report: Report) -> dict[str, frozenset[str]]:
    """Per client, the controls of the tier it is judged against (none without one)."""
    return {cid: required_controls(DEFAULT_TIERS[t]) if t else frozenset() for cid, t in report.tiers_required.items()}


def render_junit(report: Report) -> str:
    """One test case per check and client. ``violated`` is a failure, and so is any verdict but
    ``enforced`` of a control the client's own tier requires; ``not_run`` is skipped."""
    per_client = _required(report)
    suite = ET.Element("testsuite", name=f"jarmor audit {clean(report.issuer)}", tests=str(len(report.findings)))
    failures = skipped = 0
    for f in report.findings:
        case = ET.SubElement(suite, "testcase", classname=f"audit.{clean(f.client_id)}", name=f.check)
        evidence = clean(f.evidence)  # XML 1.0 cannot carry control characters
        required = per_client.get(f.client_id, frozenset())
        if f.verdict is Verdict.VIOLATED or (f.check in required and f.verdict is not Verdict.ENFORCED):
            failures += 1
            ET.SubElement(case, "failure", message=f.verdict.value, type=f.verdict.value).text = evidence
        elif f.verdict is Verdict.NOT_RUN:
            skipped += 1
            ET.SubElement(case, "skipped", message=evidence)
        ET.SubElement(case, "system-out").text = "\n".join(
            [f"verdict: {f.verdict.value}", f"evidence: {evidence}", *map(clean, f.requests), *f.refs]
        )
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    suite.set("errors", "0")
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
_HTML = _env.from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>jarmor audit of {{ r.issuer }}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:70em}td,th{padding:.3em .6em;border-bottom:1px solid #ddd;
vertical-align:top;text-align:left}.enforced{color:#176}.violated{color:#b00;font-weight:bold}
.optional{color:#960}.absent{color:#666}.not_run{color:#888}small{color:#555;overflow-wrap:anywhere}
.counts span{display:inline-block;margin-right:1.2em;font-size:1.1em}section{margin-top:1.5em}
details{margin:.4em 0;padding:.4em .6em;border:1px solid #ddd;border-radius:4px}summary{cursor:pointer}
.wide{overflow-x:auto}</style></head><body>
<h1>jarmor audit of {{ r.issuer }}</h1>
<p>started {{ r.started_at }}; {{ r.requests_sent }} requests; strictest tier met:
<strong>{{ r.tier_met or "none" }}</strong></p>
<section><h2>Summary</h2>
<p class="counts">{% for verdict, n in counts %}<span class="{{ verdict }}">{{ n }} {{ verdict }}</span>{% endfor %}</p>
<div class="wide"><table><tr><th>client</th><th>tier required</th><th>tier met</th>{% for v in verdicts %}<th class="{{ v }}">{{ v }}</th>{% endfor %}</tr>
{% for c in r.client_ids %}<tr><td>{{ c }}</td>
<td{% if c in failing %} class="violated"{% endif %}>{{ r.tiers_required.get(c) or "—" }}{% if c in failing %} (not met){% endif %}</td>
<td>{{ r.tiers_met.get(c) or "none" }}</td>
{% for v in verdicts %}<td>{{ per_client[c][v] | join(", ") }}</td>{% endfor %}</tr>{% endfor %}</table></div>
</section>
<section><h2>Evidence, check by check</h2>
{% for f in r.findings %}<details{% if f.verdict.value == "violated" %} open{% endif %}><summary>
<span class="{{ f.verdict.value }}">{{ f.verdict.value }}</span> — {{ f.check }} <small>({{ f.client_id }})</small>
</summary><p>{{ f.evidence }}</p>
{% for q in f.requests %}<small>{{ q }}</small><br>{% endfor %}
<p><small>references: {{ f.refs | join(", ") }}</small></p></details>
{% endfor %}</section></body></html>
""")


def render_html(report: Report) -> str:
    """A summary first (verdict counts; per client, the tier met and the checks in each verdict), then each
    finding's evidence (violated ones open)."""
    verdicts = [v.value for v in Verdict]
    counts = [(v, sum(f.verdict.value == v for f in report.findings)) for v in verdicts]
    per_client = {c: {v: [f.check for f in report.findings if f.client_id == c and f.verdict.value == v]
                      for v in verdicts} for c in report.client_ids}
    return _HTML.render(r=report, verdicts=verdicts, counts=[(v, n) for v, n in counts if n], per_client=per_client,
                        failing=report.failing())

"""Where the jarmor server's CPU goes under load: samples grouped by layer, scaled to ms per flow.

    python bench/profile_server.py analyze DIR/cpu-profile.collapsed [--cpu-ms-per-flow 4.2]
    python bench/profile_server.py pyspy --pid PID --issuer http://127.0.0.1:8000 \
        --keys bench/results/peer-node/keys/client.private.jwks.json --out DIR [--duration 20] [-c 16]

Two sources of stacks, same analysis:

* ``bench/cpu_profile.py`` (what ``bench/run.py --profile`` reports): the server runs under a CPU-time
  sampler, so every sample stands for the same CPU time and shares multiply into ms per flow;
* ``py-spy record`` (``pyspy`` above; also run by ``--profile`` when py-spy is installed): wall-clock samples
  of the non-idle thread, plus a flame graph (``profile.svg``). On this VM it over-weights syscalls that
  wait (``send`` on loopback shows as ~20 % where it costs ~3 % of CPU), so use it to navigate, not to add up.

``analyze`` attributes every sample to the innermost frame that belongs to a layer of interest (stdlib helpers
such as ``dataclasses``, ``re`` or ``base64`` count for their caller) and prints the share of each layer, the
split by endpoint, the JOSE and storage totals and the hottest functions. A C call (``sqlite3`` executing a
statement, an ECDSA operation, a ``send``) is counted in the Python frame that called it.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*):(?P<line>\d+)\)$")

SOCKET_FUNCS = {"write", "_write_ready", "_read_ready", "_read_ready__get_buffer", "_read_ready__data_received",
                "_read_ready__on_eof", "sock_sendall", "sock_recv", "close", "_call_connection_lost"}
SQLITE_LEAF_FUNCS = {"do_execute", "do_executemany", "do_execute_no_params", "fetchone", "fetchall",
                     "_fetchone_impl", "_fetchall_impl", "do_commit", "do_rollback", "do_begin"}
# jarmor's own SQLite executor calls the sqlite3 module directly from these (as a leaf: the C call)
STORE_SQLITE_LEAF_FUNCS = {"_execute", "first", "all", "write_many", "executemany", "fetchone", "fetchall"}
TRANSPARENT_STDLIB = {
    "dataclasses", "re", "base64", "hashlib", "hmac", "secrets", "typing", "contextlib", "threading", "copy",
    "enum", "functools", "abc", "weakref", "collections", "string", "html", "random", "math", "operator",
    "_weakrefset", "types", "inspect", "uuid", "datetime", "ipaddress", "warnings", "__init__", "codecs",
    "encodings", "email", "http", "textwrap", "struct",
}
JARMOR_LAYERS = {
    "jose": "jarmor.jose (strict checks around the crypto)",
    "protocol": "jarmor.protocol (OAuth checks, codes, tokens)",
    "store": "jarmor.store (SQL store glue)",
    "server": "jarmor.server (ASGI adapter, pages)",
    "governance": "jarmor.governance (flow records)",
    "config.py": "jarmor (other)",
    "cli": "jarmor (other)",
}
LIBRARIES = {
    "joserfc": "JOSE library + cryptography (sign/verify, key objects)",
    "cryptography": "JOSE library + cryptography (sign/verify, key objects)",
    "sqlalchemy": "SQLAlchemy Core (statement execution overhead)",
    "starlette": "Starlette (middleware, routing, Request/Response)",
    "anyio": "Starlette (middleware, routing, Request/Response)",
    "uvicorn": "HTTP/1.1 server (uvicorn + h11 parsing/writing)",
    "h11": "HTTP/1.1 server (uvicorn + h11 parsing/writing)",
    "httptools": "HTTP/1.1 server (uvicorn + h11 parsing/writing)",
    "jinja2": "HTML templates (jinja2)",
    "markupsafe": "HTML templates (jinja2)",
    "orjson": "JSON",
}
STDLIB_LAYERS = {
    "asyncio": "asyncio event loop (scheduling, futures, transports)",
    "selectors": "asyncio event loop (scheduling, futures, transports)",
    "logging": "logging",
    "json": "JSON",
    "urllib": "URL and form parsing (urllib.parse)",
    "sqlite3": "SQLite engine (C; incl. WAL writes)",
}
SOCKET = "socket I/O (send/recv syscalls, loopback TCP)"
SQLITE = "SQLite engine (C; incl. WAL writes)"


def parse_frame(frame: str) -> tuple[str, str]:
    m = _FRAME.match(frame)
    if not m:
        return frame, ""
    return m.group("func"), m.group("file")


def layer_of(func: str, path: str, is_leaf: bool) -> str | None:
    """The layer a frame belongs to, or None when it is a transparent helper (count it for its caller)."""
    if "/site-packages/" in path:
        pkg = path.split("/site-packages/", 1)[1].split("/", 1)[0]
        if pkg == "sqlalchemy" and is_leaf and func.rsplit(".", 1)[-1] in SQLITE_LEAF_FUNCS:
            return SQLITE
        return LIBRARIES.get(pkg, f"other library ({pkg})")
    m = re.search(r"/jarmor/([^/]+)", path)
    if m and "/site-packages/" not in path:
        sub = m.group(1)
        if sub == "store" and is_leaf and func.rsplit(".", 1)[-1] in STORE_SQLITE_LEAF_FUNCS:
            return SQLITE
        return JARMOR_LAYERS.get(sub, f"jarmor.{sub.removesuffix('.py')}")
    m = re.search(r"/lib/python3\.\d+/([^/.]+)", path)
    if m:
        mod = m.group(1)
        if mod == "asyncio" and path.endswith("selector_events.py") and is_leaf \
                and func.rsplit(".", 1)[-1] in SOCKET_FUNCS:
            return SOCKET
        if mod in STDLIB_LAYERS:
            return STDLIB_LAYERS[mod]
        if mod in TRANSPARENT_STDLIB:
            return None
        return None
    if path in ("<string>", "") or path.startswith("<"):
        return None
    return "other"


ENDPOINT = re.compile(r"^JarmorServer\.(\w+)$")


def analyze(raw: Path, cpu_ms_per_flow: float | None = None, top: int = 25) -> dict[str, Any]:
    layers: collections.Counter[str] = collections.Counter()
    endpoints: collections.Counter[str] = collections.Counter()
    self_funcs: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    jarmor_inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [parse_frame(f) for f in stack.split(";")]
        owner = "other"
        for i in range(len(frames) - 1, -1, -1):
            func, path = frames[i]
            got = layer_of(func, path, i == len(frames) - 1)
            if got is not None:
                owner = got
                break
        layers[owner] += n
        leaf_func, leaf_path = frames[-1]
        short = re.sub(r"^.*/(site-packages|lib/python3\.\d+|src)/", "", leaf_path)
        self_funcs[f"{leaf_func} ({short})"] += n
        endpoint = "outside endpoint handlers (HTTP parsing/writing, event loop, middleware)"
        for func, path in frames:
            m = ENDPOINT.match(func)
            if m and "/jarmor/server/" in path:
                endpoint = f"JarmorServer.{m.group(1)}"
                break
        endpoints[endpoint] += n
        seen: set[str] = set()
        seen_funcs: set[str] = set()
        for func, path in frames:
            if "/jarmor/jose/" in path or "/site-packages/joserfc/" in path or "/site-packages/cryptography/" in path:
                seen.add("all JOSE (jarmor.jose + joserfc + cryptography)")
            if "/site-packages/sqlalchemy/" in path or "/jarmor/store/" in path:
                seen.add("all storage (jarmor.store + SQLAlchemy + SQLite)")
            if "/site-packages/starlette/" in path:
                seen.add("inside Starlette's app (everything under Starlette.__call__)")
            if "/jarmor/" in path and "/site-packages/" not in path and "/jarmor/cli/" not in path:
                seen_funcs.add(func)
        for k in seen:
            inclusive[k] += n
        for f in seen_funcs:
            jarmor_inclusive[f] += n
    scale = (cpu_ms_per_flow or 0) / total if total else 0.0

    def rows(counter: collections.Counter[str], limit: int | None = None) -> list[dict[str, Any]]:
        return [
            {"name": k, "samples": v, "pct": round(100 * v / total, 1),
             "ms_per_flow": round(v * scale, 3) if cpu_ms_per_flow else None}
            for k, v in counter.most_common(limit)
        ]

    return {
        "samples": total,
        "cpu_ms_per_flow": cpu_ms_per_flow,
        "layers": rows(layers),
        "endpoints": rows(endpoints),
        "inclusive": rows(inclusive),
        "top_self": rows(self_funcs, top),
        "top_jarmor_inclusive": rows(jarmor_inclusive, top),
    }


def table(result: dict[str, Any]) -> str:
    ms = result.get("cpu_ms_per_flow")
    out = []
    for title, key in (("layer (innermost frame)", "layers"), ("endpoint", "endpoints"),
                       ("inclusive", "inclusive")):
        out += [f"| {title} | share | ms/flow |", "|---|---:|---:|"]
        for r in result[key]:
            out.append(f"| {r['name']} | {r['pct']:.1f}% | {r['ms_per_flow'] if ms else '-'} |")
        out.append("")
    return "\n".join(out)


def drive(*, issuer: str, keys: Path, duration: float, concurrency: int, out_json: Path,
          server_pid: int, python: str = sys.executable, warmup: int = 5, background: bool = False,
          client_ids_file: Path | None = None) -> subprocess.Popen[bytes] | dict[str, Any]:
    """Run ``bench/driver.py``; in the background (returns the process) or to completion (its summary)."""
    cmd = [python, str(HERE / "driver.py"), "--issuer", issuer, "--keys", str(keys), "-c", str(concurrency),
           "-d", str(duration), "--server-pid", str(server_pid), "--json", str(out_json),
           "--warmup", str(warmup)]
    if client_ids_file is not None:
        cmd += ["--client-ids-file", str(client_ids_file)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if background:
        return proc
    proc.wait()
    summary: dict[str, Any] = json.loads(out_json.read_text())
    return summary


def cpu_profile_under_load(*, pid: int, issuer: str, keys: Path, out_dir: Path, duration: float,
                           concurrency: int, python: str = sys.executable, client_ids_file: Path | None = None,
                           name: str = "cpu-profile") -> dict[str, Any]:
    """Profile a server started under ``bench/cpu_profile.py`` (sampling starts at SIGUSR1, stops and writes
    its stacks at SIGUSR2): warm up, sample ``duration`` seconds of load, analyze."""
    collapsed = out_dir / f"{name}.collapsed"
    drive(issuer=issuer, keys=keys, duration=3, concurrency=concurrency, out_json=out_dir / f"{name}-warmup.json",
          server_pid=pid, python=python, client_ids_file=client_ids_file)
    os.kill(pid, signal.SIGUSR1)
    summary = drive(issuer=issuer, keys=keys, duration=duration, concurrency=concurrency,
                    out_json=out_dir / f"{name}-driver.json", server_pid=pid, python=python, warmup=0,
                    client_ids_file=client_ids_file)
    assert isinstance(summary, dict)
    os.kill(pid, signal.SIGUSR2)
    for _ in range(100):
        if collapsed.exists() and collapsed.stat().st_size:
            break
        time.sleep(0.1)
    cpu = summary.get("provider_cpu_ms_per_flow")
    result = analyze(collapsed, cpu)
    result.update(method="CPU-time sampler (ITIMER_PROF, bench/cpu_profile.py)", concurrency=concurrency,
                  server_cpu_ms_per_flow=cpu, flows_per_s_while_sampled=summary.get("flows_per_s"),
                  flows=summary.get("flows_ok"), table=table(result), files={"collapsed": str(collapsed)})
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2))
    (out_dir / f"{name}.md").write_text(report(result))
    return result


def pyspy_under_load(*, pid: int, issuer: str, keys: Path, out_dir: Path, duration: float,
                     concurrency: int, python: str = sys.executable, rate: int = 200) -> dict[str, Any] | None:
    """py-spy's view (wall-clock time of the non-idle thread) and a flame graph, ``profile.svg``."""
    spy = shutil.which("py-spy") or str(Path(python).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy not found: pip install py-spy (skipping the flame graph)", file=sys.stderr)
        return None
    svg_seconds = min(10.0, duration)
    drive_seconds = duration + svg_seconds + 3
    drv_json = out_dir / "pyspy-driver.json"
    drv = drive(issuer=issuer, keys=keys, duration=drive_seconds, concurrency=concurrency, out_json=drv_json,
                server_pid=pid, python=python, background=True)
    assert isinstance(drv, subprocess.Popen)
    raw = out_dir / "pyspy.collapsed"
    try:
        time.sleep(2)
        common = ["--pid", str(pid), "--rate", str(rate), "--nonblocking", "--full-filenames"]
        subprocess.run([spy, "record", *common, "--duration", str(int(duration)), "--format", "raw",
                        "-o", str(raw)], check=True, capture_output=True)
        subprocess.run([spy, "record", *common, "--duration", str(int(svg_seconds)), "-o",
                        str(out_dir / "profile.svg")], check=False, capture_output=True)
    finally:
        drv.wait(timeout=drive_seconds + 60)
    summary = json.loads(drv_json.read_text()) if drv_json.exists() else {}
    cpu = summary.get("provider_cpu_ms_per_flow")
    result = analyze(raw, cpu)
    result.update(method="py-spy (wall-clock samples of the non-idle thread)", concurrency=concurrency,
                  server_cpu_ms_per_flow=cpu, flows_per_s_while_sampled=summary.get("flows_per_s"),
                  table=table(result), files={"collapsed": str(raw), "svg": str(out_dir / "profile.svg")})
    (out_dir / "pyspy.json").write_text(json.dumps(result, indent=2))
    (out_dir / "pyspy.md").write_text(report(result))
    return result


def report(result: dict[str, Any]) -> str:
    lines = [f"{result['samples']} samples; server CPU {result.get('cpu_ms_per_flow')} ms per flow", "",
             table(result), "| hottest functions (self) | share | ms/flow |", "|---|---:|---:|"]
    lines += [f"| `{r['name']}` | {r['pct']:.1f}% | {r['ms_per_flow'] or '-'} |" for r in result["top_self"]]
    lines += ["", "| jarmor functions (inclusive) | share | ms/flow |", "|---|---:|---:|"]
    lines += [f"| `{r['name']}` | {r['pct']:.1f}% | {r['ms_per_flow'] or '-'} |"
              for r in result["top_jarmor_inclusive"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("analyze")
    a.add_argument("collapsed", type=Path)
    a.add_argument("--cpu-ms-per-flow", type=float)
    a.add_argument("--json", action="store_true")
    r = sub.add_parser("pyspy")
    r.add_argument("--pid", type=int, required=True)
    r.add_argument("--issuer", required=True)
    r.add_argument("--keys", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--duration", type=float, default=20.0)
    r.add_argument("-c", "--concurrency", type=int, default=16)
    opt = p.parse_args(argv)
    if opt.cmd == "analyze":
        result = analyze(opt.collapsed, opt.cpu_ms_per_flow)
        print(json.dumps(result, indent=2) if opt.json else report(result))
        return 0
    opt.out.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(KeyboardInterrupt):
        result = pyspy_under_load(pid=opt.pid, issuer=opt.issuer, keys=opt.keys, out_dir=opt.out,
                                    duration=opt.duration, concurrency=opt.concurrency)
        if result:
            print(report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Progress lines appear on a terminal and never in a pipe; verification reports progress as it goes."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

from jarmor.cli.progress import Progress
from jarmor.governance.chain import verify
from jarmor.governance.records import FlowEvent, seal
from jarmor.store.flow_memory import MemoryFlowRecordStore


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal() -> None:
    tty, pipe = Terminal(), io.StringIO()
    for stream in (tty, pipe):
        p = Progress("verifying records", stream=stream, interval=0)
        p.update(1000)
        p.update(2000, 5000)
        p.done()
    assert "verifying records: 2000 of 5000" in tty.getvalue() and tty.getvalue().endswith("\r\x1b[K")
    assert pipe.getvalue() == ""


async def test_verify_reports_progress_every_thousand_records() -> None:
    store = MemoryFlowRecordStore()
    events = [FlowEvent(flow_id=f"f{i}", stage="par", outcome="pushed", at=1_700_000_000 + i) for i in range(2500)]
    await store.append([e.entry() for e in events], seal)
    seen: list[int] = []
    assert (await verify(store, progress=seen.append)).ok
    assert seen and seen[-1] >= 2000 and seen == sorted(seen)


def test_flows_verify_writes_progress_to_a_terminal_and_not_to_a_pipe(tmp_path: Path) -> None:
    import asyncio

    from jarmor.store import open_store

    db = f"sqlite:///{tmp_path / 'jarmor.db'}"

    async def fill() -> None:
        store = open_store(db)
        try:
            now = int(time.time())  # recent: no checkpoint is due yet for them
            events = [FlowEvent(flow_id=f"f{i}", stage="par", outcome="pushed", at=now) for i in range(3000)]
            await store.flows.append([e.entry() for e in events], seal)
        finally:
            await store.close()

    asyncio.run(fill())
    env = {k: v for k, v in os.environ.items() if not k.startswith("JARMOR_")}
    env["JARMOR_TEST_PROGRESS_INTERVAL"] = "0"
    args = [sys.executable, "-m", "jarmor.cli.main", "flows", "verify", "--database", db]
    piped = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0 and "verifying records" not in piped.stderr and "\r" not in piped.stderr
    main, child = pty.openpty()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=child)
    os.close(child)
    seen = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(main)
    assert proc.wait(timeout=60) == 0
    assert b"verifying records: 2000" in seen


def test_db_upgrade_reports_each_migration() -> None:
    import sqlalchemy

    from jarmor.store import migrate

    engine = sqlalchemy.create_engine("sqlite://")
    applied: list[tuple[int, int]] = []
    before, after = migrate.upgrade(engine, progress=lambda n, total: applied.append((n, total)))
    assert (before, after) == (None, migrate.HEAD)
    total = int(migrate.HEAD)
    assert applied == [(n, total) for n in range(1, total + 1)]  # one call per revision, "n of total"
    engine = sqlalchemy.create_engine("sqlite://")
    migrate.upgrade(engine, revision="0002")
    applied.clear()
    migrate.upgrade(engine, progress=lambda n, total: applied.append((n, total)))
    assert applied == [(n, total - 2) for n in range(1, total - 1)]  # only the pending ones count


def test_no_migration_copies_rows() -> None:
    """Progress stays per migration because no migration touches rows: one that runs DML must report
    progress inside itself (and then update this test)."""
    versions = Path(__file__).resolve().parents[2] / "src/jarmor/store/migrations/versions"
    scripts = sorted(versions.glob("[0-9][0-9][0-9][0-9]_*.py"))
    assert len(scripts) >= 4
    for script in scripts:
        text = script.read_text()
        for dml in ("op.execute", "bulk_insert", "get_bind", "insert(", "update(", "select("):
            assert dml not in text, f"{script.name} runs {dml}: give it per-row progress"

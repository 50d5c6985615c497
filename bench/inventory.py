"""The client inventory at scale: ``jarmor clients list`` (``governance.inventory``) over 100,000 clients.

    python bench/inventory.py [--clients 100000] [--database sqlite:///path.db | postgresql+psycopg://...]

Fills a fresh database with N clients (each with a registered key; a third with a grant and a token), then
times, in the same run:

* ``inventory``: the bulk reading (four queries, however many clients) — what the CLI, the dashboard and
  the admin API use;
* ``per-client``: the former reading (three queries per client, N+1), on a sample of 2,000 clients,
  extrapolated to N;
* a filtered page (``InventoryQuery``: tier, kind, owner, 100 rows) over the bulk result.

Figures are wall time and process CPU time (the database is in-process for SQLite). Nothing here is a test.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from jarmor.governance.inventory import (  # noqa: E402
    InventoryQuery,
    client_summary,
    inventory,
    select_page,
)
from jarmor.store import open_store  # noqa: E402
from jarmor.store.base import ClientRecord, GrantRecord, TokenRecord  # noqa: E402

SAMPLE = 2000


async def fill(store: object, n: int, now: int) -> None:
    s = store  # typed loosely: any Store
    for i in range(n):
        cid = f"client-{i:06d}"
        meta = {"client_name": f"App {i}", "risk_tier": ("baseline", "elevated", "high")[i % 3],
                "client_kind": ("third-party", "machine", "first-party")[i % 3], "owner": f"team-{i % 50}",
                "redirect_uris": ["https://app.example.com/cb"], "token_endpoint_auth_method": "private_key_jwt"}
        await s.clients.create(ClientRecord(cid, meta, now - i, now - i))  # type: ignore[attr-defined]
        await s.client_key_history.observe(cid, [(f"tp-{i}", f"kid-{i}")], now - i)  # type: ignore[attr-defined]
        if i % 3 == 0:
            await s.grants.create(GrantRecord(f"g{i}", cid, "alice", "openid", now))  # type: ignore[attr-defined]
            await s.tokens.create(  # type: ignore[attr-defined]
                TokenRecord(f"t{i}", "access_token", cid, "alice", "openid", f"g{i}", now, now + 3600)
            )


def timed(label: str, results: list[tuple[str, float, float]]) -> object:
    class Timer:
        def __enter__(self) -> None:
            self.wall, self.cpu = time.perf_counter(), time.process_time()

        def __exit__(self, *exc: object) -> None:
            results.append((label, time.perf_counter() - self.wall, time.process_time() - self.cpu))

    return Timer()


async def main(n: int, database: str | None) -> None:
    now = int(time.time())
    tmp = tempfile.TemporaryDirectory()
    url = database or f"sqlite:///{Path(tmp.name) / 'inventory.db'}"
    store = open_store(url)
    results: list[tuple[str, float, float]] = []
    try:
        with timed(f"fill {n} clients", results):  # type: ignore[attr-defined]
            await fill(store, n, now)
        with timed("inventory (bulk, 4 queries)", results):  # type: ignore[attr-defined]
            summaries = await inventory(store, now)
        assert len(summaries) == n
        with timed("filtered page (tier, kind, owner; 100 rows)", results):  # type: ignore[attr-defined]
            page, total = select_page(summaries, InventoryQuery(tier="high", kind="first-party", owner="team-2"), now)
        records = (await store.clients.list())[:SAMPLE]
        with timed(f"per-client reading, {SAMPLE} clients", results):  # type: ignore[attr-defined]
            for r in records:
                await client_summary(store, r, now)
    finally:
        await store.close()
        tmp.cleanup()
    per_client = next(w for label, w, _ in results if label.startswith("per-client"))
    print(f"\n## Inventory of {n} clients ({url.partition(':')[0]})\n")
    print("| step | wall s | CPU s |\n|---|---:|---:|")
    for label, wall, cpu in results:
        print(f"| {label} | {wall:.2f} | {cpu:.2f} |")
    print(f"| per-client reading extrapolated to {n} | {per_client * n / SAMPLE:.1f} | |")
    print(f"\nfiltered page: {len(page)} of {total} matching")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=100_000)
    p.add_argument("--database", help="a database URL (default: a fresh SQLite file)")
    opt = p.parse_args()
    asyncio.run(main(opt.clients, opt.database))

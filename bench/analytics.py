"""bench/analytics: the marketer's two heavy reads at 200,000 members and 2,000,000 purchases,
each beside a hand-written SQL of the same aggregates, in the same run on the same data:
(a) recomputing every built-in segment (the worker's job), and (b) `ProgramKpis` for a year,
over GraphQL (contract/operations/marketer.graphql, as written, marketer token) and through
the domain call.

    .venv/bin/python bench/analytics.py [--database-url postgres://postgres@127.0.0.1:5432/postgres]
                                        [--members 200000] [--purchases 2000000] [--runs 5]
                                        [--keep loyalty_bench_analytics]

The data is generated here with generate_series (members enrolled over two years in the three
demo tiers, each with a points wallet; purchases spread over the last two years in 12 stores,
2% of them partly refunded; an EARN entry per purchase, a REDEEM for one purchase in ten, an
EXPIRE for one member in twenty). That takes minutes at full size: `--keep DB` fills the
database DB once (created if missing) and reuses it on later runs with the same DB (it is not
dropped; the scale options only apply to the run that fills it). Without `--keep` a scratch
database is created and dropped. Each figure is the median of `--runs` runs after one warm-up
run; the answers are checked equal before the figures are printed. The fill also writes the
per-day rollups (migration 0012's backfill), as the application keeps them.

The peers run with the session settings ours runs with (segments: work_mem and enable_hashagg
off; KPIs: JIT off, random_page_cost 1.1, enable_hashagg off), so that the ratios compare the
SQL. For segments, the built-ins' rules as one CASE over per-member aggregates, (1) inserted
into a plain table (memberships only), (2) inserted with their history into tables LIKE ours
(the same writes as a first run), (3) compared both ways with (2)'s memberships, nothing
written (the same work as a steady run); for KPIs, every figure in one statement.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib import import_module
from pathlib import Path

import httpx
from harness import loyalty_server
from tortoise import connections
from tortoise.transactions import in_transaction

from api.documents import operations_of
from domain import clock, db
from domain.kpis import service as kpis
from domain.program.config import load
from domain.segments import service as segments
from domain.segments.repository import EVERYONE_WORK_MEM

ROOT = Path(__file__).resolve().parents[1]
QUERY = operations_of([ROOT / "contract" / "operations" / "marketer.graphql"])["ProgramKpis"][1]

# Deterministic ids, so that purchases and entries can name their member by number.
MEMBER = "('00000000-0000-4000-8000-' || lpad(to_hex({n}), 12, '0'))::uuid"
WALLET = "('00000000-0000-4000-9000-' || lpad(to_hex({n}), 12, '0'))::uuid"

FILL = [
    "SET session_replication_role = replica",  # no foreign-key triggers while filling
    f"""
    INSERT INTO members (id, member_number, email, timezone, locale, push_marketing, location_nudges, tier_key,
                         created_at, updated_at)
    SELECT {MEMBER.format(n="n")}, 'B' || n, 'bench' || n || '@example.com', 'UTC', 'en', n % 2 = 0, n % 3 = 0,
           CASE WHEN n % 40 = 0 THEN 'gold' WHEN n % 7 = 0 THEN 'silver' ELSE 'bronze' END,
           $1::timestamptz - (random() * 730) * interval '1 day', $1::timestamptz
    FROM generate_series(1, $2::int) n
    """,
    f"""
    INSERT INTO wallets (id, member_id, kind, balance, pending, updated_at)
    SELECT {WALLET.format(n="n")}, {MEMBER.format(n="n")}, 'POINTS', 0, 0, $1::timestamptz
    FROM generate_series(1, $2::int) n
    """,
    """
    CREATE UNLOGGED TABLE bench_purchases AS
    SELECT n, 1 + floor(random() * $2::int)::int AS m, round((5 + random() * 55)::numeric, 2) AS amount,
           $1::timestamptz - (random() * 730) * interval '1 day' AS at
    FROM generate_series(1, $3::int) n
    """,
    f"""
    INSERT INTO purchases (id, member_id, channel, store_key, external_id, amount, currency, points_earned,
                           cashback_earned, refunded_amount, points_reversed, cashback_reversed, shortfall,
                           occurred_at)
    SELECT gen_random_uuid(), {MEMBER.format(n="m")}, 'STORE', 'store-' || (n % 12), 'b' || n, amount, 'EUR',
           floor(amount * 10),
           0, CASE WHEN n % 50 = 0 THEN round(amount / 2, 2) ELSE 0 END, 0, 0, 0, at
    FROM bench_purchases
    """,
    f"""
    INSERT INTO ledger_entries (wallet_id, member_id, kind, amount, balance_after, qualifying, description,
                                explanation, occurred_at)
    SELECT {WALLET.format(n="m")}, {MEMBER.format(n="m")}, 'EARN', floor(amount * 10), 0, floor(amount * 10),
           'Purchase', '{{}}'::jsonb, at
    FROM bench_purchases
    UNION ALL
    SELECT {WALLET.format(n="m")}, {MEMBER.format(n="m")}, 'REDEEM', -100, 0, 0, 'Reward', '{{}}'::jsonb,
           at + interval '1 hour'
    FROM bench_purchases WHERE n % 10 = 0
    UNION ALL
    SELECT {WALLET.format(n="n")}, {MEMBER.format(n="n")}, 'EXPIRE', -50, 0, 0, '50 points expired', '{{}}'::jsonb,
           $1::timestamptz - (random() * 365) * interval '1 day'
    FROM generate_series(1, $2::int) n WHERE n % 20 = 0
    """,
    """
    UPDATE wallets w SET balance = GREATEST(t.total, 0)
    FROM (SELECT wallet_id, SUM(amount) AS total FROM ledger_entries GROUP BY wallet_id) t WHERE w.id = t.wallet_id
    """,
    "DROP TABLE bench_purchases",
    # the per-day rollups the application keeps beside the rows it writes (migration 0012's backfill)
    *import_module("domain.migrations.0012_standing").BACKFILL,
    "SET session_replication_role = origin",
    "VACUUM ANALYZE",
]

# The same figures by hand: one statement, as someone who knows the tables would write it.
HAND = """
WITH per_member AS (
    SELECT COUNT(*) FILTER (WHERE occurred_at >= $2) AS now_n, COUNT(*) FILTER (WHERE occurred_at < $2) AS before_n,
           SUM(amount - refunded_amount) FILTER (WHERE occurred_at >= $2) AS net
    FROM purchases WHERE occurred_at >= $1 AND occurred_at < $3 GROUP BY member_id
), bought AS (
    SELECT COUNT(*) FILTER (WHERE now_n > 0) AS active, COUNT(*) FILTER (WHERE now_n > 1) AS repeaters,
           COUNT(*) FILTER (WHERE before_n > 0) AS active_before,
           COUNT(*) FILTER (WHERE before_n > 0 AND now_n > 0) AS retained,
           SUM(now_n) AS orders, COALESCE(SUM(net), 0) AS net_sales
    FROM per_member
), flow AS (
    SELECT COALESCE(SUM(e.amount) FILTER (WHERE e.kind IN ('EARN', 'BONUS', 'ADJUST', 'REFUND')), 0) AS issued,
           COALESCE(-SUM(e.amount) FILTER (WHERE e.kind = 'REDEEM'), 0) AS redeemed,
           COALESCE(-SUM(e.amount) FILTER (WHERE e.kind = 'EXPIRE'), 0) AS expired
    FROM ledger_entries e
    WHERE e.occurred_at >= $2 AND e.occurred_at < $3
      AND NOT EXISTS (SELECT 1 FROM wallets w WHERE w.id = e.wallet_id AND w.kind = 'CASHBACK')
)
SELECT b.active, (SELECT COUNT(*) FROM members WHERE created_at >= $2 AND created_at < $3) AS new_members,
       round(b.retained::numeric / NULLIF(b.active_before, 0), 4) AS retention,
       round(b.repeaters::numeric / NULLIF(b.active, 0), 4) AS repeat_rate,
       round(b.net_sales / NULLIF(b.orders, 0), 2) AS aov,
       round(b.net_sales / NULLIF(b.active, 0)
             / (1 - LEAST(COALESCE(round(b.retained::numeric / NULLIF(b.active_before, 0), 4), 0), 0.9)), 2) AS clv,
       round(f.redeemed::numeric / NULLIF(f.issued, 0), 4) AS redemption, f.issued, f.redeemed, f.expired,
       (SELECT COALESCE(SUM(balance + pending), 0) FROM wallets WHERE kind = 'POINTS') AS liability
FROM bought b, flow f
"""


# The built-in segments by hand (domain/segments/repository.py's rules, same thresholds).
SEGMENTS_BY_HAND = """
WITH p AS (
    SELECT member_id, count(*) AS n, max(occurred_at) AS last_at,
           count(*) FILTER (WHERE occurred_at > $1) AS wn,
           coalesce(sum(amount - refunded_amount) FILTER (WHERE occurred_at > $1), 0) AS ws
    FROM purchases WHERE refunded_amount < amount GROUP BY member_id
), a AS (
    SELECT m.id, m.created_at > $2 AND coalesce(p.n, 0) <= 1 AS is_new,
           coalesce(p.n >= $4 AND p.last_at <= $3, false) AS risk,
           coalesce(p.ws >= $5 AND p.wn >= $6, false) OR m.tier_key = $7 AS hv,
           coalesce(p.wn, 0) AS wn
    FROM members m LEFT JOIN p ON p.member_id = m.id
)
SELECT CASE WHEN is_new THEN 'new' WHEN risk THEN 'at_risk' WHEN hv THEN 'high_value' ELSE 'occasional' END, id
FROM a WHERE is_new OR risk OR hv OR wn >= 1
"""
# Into a plain table: the memberships a run would leave, no history, no index.
SEGMENTS_PEER = "INSERT INTO peer_members (segment_key, member_id) " + SEGMENTS_BY_HAND
# The same writes as a first run: memberships and their history, into tables shaped as ours
# (CREATE TABLE ... (LIKE ours INCLUDING ALL): the same columns, defaults and indexes; no
# foreign keys, as ours since migration 0014; no conflict handling).
SEGMENTS_PEER_SAME_WRITES = f"""
WITH x(segment_key, member_id) AS ({SEGMENTS_BY_HAND}),
ins AS (
    INSERT INTO peer_segment_members (segment_id, member_id, since)
    SELECT s.id, x.member_id, $8 FROM x JOIN segments s ON s.key = x.segment_key
    RETURNING segment_id, member_id
)
INSERT INTO peer_segment_changes (segment_id, member_id, change, at)
SELECT segment_id, member_id, 'ENTERED', $8 FROM ins
"""
# The same work as a steady run: the memberships computed and compared with those the
# same-writes peer left, both ways (who would enter, who would leave), nothing written.
SEGMENTS_PEER_STEADY = f"""
WITH x(segment_key, member_id) AS ({SEGMENTS_BY_HAND}),
d AS (SELECT s.id AS segment_id, x.member_id FROM x JOIN segments s ON s.key = x.segment_key)
SELECT (SELECT count(*) FROM d WHERE NOT EXISTS (
            SELECT 1 FROM peer_segment_members p
            WHERE p.segment_id = d.segment_id AND p.member_id = d.member_id)) AS entered,
       (SELECT count(*) FROM peer_segment_members p WHERE NOT EXISTS (
            SELECT 1 FROM d WHERE d.segment_id = p.segment_id AND d.member_id = p.member_id)) AS left
"""


async def filled(creds: dict) -> int:
    conn = await db.raw_connection(creds)
    try:
        return await conn.fetchval("SELECT count(*) FROM members")
    finally:
        await conn.close()


async def filled_at(creds: dict) -> datetime:
    """When a kept database was filled (its members' updated_at): the year measured ends then."""
    conn = await db.raw_connection(creds)
    try:
        return await conn.fetchval("SELECT max(updated_at) FROM members")
    finally:
        await conn.close()


async def fill(creds: dict, members: int, purchases: int, now: datetime) -> float:
    started = time.perf_counter()
    conn = await db.raw_connection(creds)
    try:
        for statement in FILL:
            wanted = max((int(n) for n in re.findall(r"\$(\d)", statement)), default=0)
            args = [now, members, purchases][:wanted]
            await conn.execute(statement, *args)
    finally:
        await conn.close()
    return time.perf_counter() - started


async def timed(runs: int, call) -> tuple[float, object]:
    answer = await call()  # warm-up: caches, plans
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return statistics.median(times), answer


async def measure_segments(creds: dict, runs: int) -> None:
    """(a) Every built-in segment recomputed: from empty memberships (every entry written with
    its history: the worker's first run), then again with nothing changed (its usual run)."""
    program = load()
    s = program.segments
    await db.connect(creds, pool_max=4)
    try:
        conn = connections.get("default")
        await conn.execute_query("CREATE TABLE IF NOT EXISTS peer_members (segment_key text, member_id uuid)")
        for table in ("segment_members", "segment_changes"):
            await conn.execute_query(f"CREATE TABLE IF NOT EXISTS peer_{table} (LIKE {table} INCLUDING ALL)")

        async def first_run():
            await conn.execute_query("TRUNCATE segment_members, segment_changes")
            return await segments.recompute(program)

        def arguments() -> list:
            now = clock.now()
            cutoffs = [now - timedelta(days=d) for d in (s.window_days, s.new_days, s.at_risk_days)]
            return [*cutoffs, s.at_risk_purchases, s.high_value_spend, s.high_value_purchases, program.top_tier.key]

        async def peer(statement: str, args: list) -> None:
            """A peer's statement with the session settings ours runs with (its memory, its
            aggregate in index order): the figures compare the SQL, not the settings."""
            async with in_transaction() as tx:
                await tx.execute_query(f"SET LOCAL work_mem = '{EVERYONE_WORK_MEM}'")
                await tx.execute_query("SET LOCAL enable_hashagg = off")
                await tx.execute_query(statement, args)

        async def by_hand():
            await conn.execute_query("TRUNCATE peer_members")
            await peer(SEGMENTS_PEER, arguments())

        async def by_hand_same_writes():
            await conn.execute_query("TRUNCATE peer_segment_members, peer_segment_changes")
            await peer(SEGMENTS_PEER_SAME_WRITES, [*arguments(), clock.now()])

        await segments.all_segments()  # the built-ins' rows, which the same-writes peer names
        hand_s, _ = await timed(runs, by_hand)
        hand_writes_s, _ = await timed(runs, by_hand_same_writes)
        hand_steady_s, _ = await timed(runs, lambda: peer(SEGMENTS_PEER_STEADY, arguments()))
        written = await conn.execute_query_dict(
            "SELECT (SELECT count(*) FROM peer_segment_members) AS m, (SELECT count(*) FROM peer_segment_changes) AS c"
        )
        first_s, done = await timed(runs, first_run)
        steady_s, again = await timed(runs, lambda: segments.recompute(program))
        ours = await conn.execute_query_dict(
            "SELECT s.key, count(*) AS n FROM segment_members m JOIN segments s ON s.id = m.segment_id GROUP BY s.key"
        )
        theirs = await conn.execute_query_dict("SELECT segment_key AS key, count(*) AS n FROM peer_members GROUP BY 1")
        await conn.execute_query("DROP TABLE peer_members, peer_segment_members, peer_segment_changes")
    finally:
        await db.disconnect()
    sizes = {r["key"]: r["n"] for r in ours}
    peer_sizes = {r["key"]: r["n"] for r in theirs}
    # The peer ran a few seconds earlier: a member or two may have crossed a threshold since.
    assert written[0]["m"] == written[0]["c"] == sum(peer_sizes.values()), written  # the peers wrote the same
    same = all(abs(sizes.get(k, 0) - n) <= 10 for k, n in peer_sizes.items()) and set(sizes) == set(peer_sizes)
    print(f"Segments recomputed: {sizes} (entered {done.entered:,} on a first run, {again.entered} on a steady one)")
    print(f"  the hand-written SQL agrees: {same} ({peer_sizes})")
    print(f"  hand-written INSERT ... SELECT (memberships, no history): {hand_s * 1000:8.1f} ms")
    print(f"  hand-written, same writes (+ history, tables LIKE ours):  {hand_writes_s * 1000:8.1f} ms")
    print(f"  hand-written, same work as steady (compare, no writes):  {hand_steady_s * 1000:8.1f} ms")
    print(
        f"  ours, first run (every entry + its history):            {first_s * 1000:8.1f} ms"
        f"   ratio to the same writes {first_s / hand_writes_s:.2f} (to memberships only: {first_s / hand_s:.2f})"
    )
    print(
        f"  ours, steady (nothing changed, the hourly job):         {steady_s * 1000:8.1f} ms"
        f"   ratio to the same work {steady_s / hand_steady_s:.2f} (to memberships only: {steady_s / hand_s:.2f})"
    )
    print("  (aim: within 1.5x of the hand-written SQL doing the same work)")


async def measure(server, first: date, last: date, runs: int) -> None:
    program = load()
    token = server.token("marketer", "bench")
    zone = program.zone
    start = datetime.combine(first, datetime.min.time(), zone)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), zone)
    before = start - (end - start)

    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as client:

        async def over_graphql():
            r = await client.post(
                "/graphql",
                json={"query": QUERY, "variables": {"from": first.isoformat(), "to": last.isoformat()}},
                timeout=60,
            )
            return r.json()["data"]["programKpis"]

        await db.connect(server.creds, pool_max=10)
        try:
            raw = await db.raw_connection(server.creds)
            # the session settings the domain's reads run with (db.analytic_read): the ratio
            # compares the SQL (one statement here, several side by side there), not settings
            await raw.execute("SET jit = off; SET random_page_cost = 1.1; SET enable_hashagg = off")
            try:

                async def by_hand():
                    return await raw.fetchrow(HAND, before, start, end)

                hand_s, hand = await timed(runs, by_hand)
                api_s, api = await timed(runs, over_graphql)
                domain_s, domain = await timed(runs, lambda: kpis.program_kpis(program, first, last))
            finally:
                await raw.close()
        finally:
            await db.disconnect()

    same = (
        api["activeMembers"] == domain.active_members == hand["active"]
        and api["newMembers"] == domain.new_members == hand["new_members"]
        and Decimal(api["averageOrderValue"]) == domain.average_order_value == hand["aov"]
        and Decimal(api["customerLifetimeValue"]) == domain.customer_lifetime_value == hand["clv"]
        and api["pointsIssued"] == domain.points_issued == hand["issued"]
        and api["pointsLiability"] == domain.points_liability == hand["liability"]
        and api["retentionRate"] == domain.retention_rate == float(hand["retention"])
    )
    print(f"ProgramKpis {first} to {last}: {api}")
    print(f"  the three answers agree: {same}")
    for label, seconds in (
        ("hand-written SQL (one statement, asyncpg, our settings)", hand_s),
        ("domain call (kpis.program_kpis)", domain_s),
        ("ProgramKpis over GraphQL (HTTP)", api_s),
    ):
        ratio = f"   ratio {seconds / hand_s:.2f}" if seconds is not hand_s else ""
        print(f"  {label + ':':57} {seconds * 1000:8.1f} ms{ratio}")
    print("  (aim: within 1.5x of the hand-written SQL, under 1 s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LOYALTY_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--members", type=int, default=200_000)
    parser.add_argument("--purchases", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", metavar="DB", help="fill this database once and reuse it (never dropped)")
    parser.add_argument("--only", choices=["segments", "kpis"], help="one of the two measures")
    args = parser.parse_args()
    if args.keep and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", args.keep):
        parser.error("--keep: a database name of lowercase letters, digits and _")
    now = datetime.now(UTC)
    with loyalty_server(args.database_url, "--no-worker", keep=args.keep) as server:
        members = asyncio.run(filled(server.creds))
        if members:
            print(f"reusing {args.keep}: {members:,} members (--members/--purchases apply when it is filled)")
            now = asyncio.run(filled_at(server.creds))
        else:
            seconds = asyncio.run(fill(server.creds, args.members, args.purchases, now))
            print(f"filled {args.members:,} members, {args.purchases:,} purchases in {seconds:.0f} s")
        if args.only != "kpis":
            asyncio.run(measure_segments(server.creds, args.runs))
        if args.only != "segments":
            last = now.date() - timedelta(days=1)
            asyncio.run(measure(server, last - timedelta(days=364), last, args.runs))


if __name__ == "__main__":
    main()

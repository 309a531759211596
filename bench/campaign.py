"""bench/campaign: a campaign to N members with a device, from its scheduled time to
the last message accepted by a local fake FCM, through our whole path (the campaign's
start: audience, holdout, variants, recipients and queued notifications; then the push
dispatcher: claim, policy, firebase-admin, record, the recipients' outcomes), beside raw
`send_each_async` of as many messages to the same server in the same run.

    .venv/bin/python bench/campaign.py [--members 100000] [--fake h2|python] [--database-url postgres://...]

The fake and the raw peer are bench/push's (HTTP/2 over TLS by default, Node).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.push import PROGRAM, raw_pass, run_setup  # noqa: E402
from domain import clock  # noqa: E402
from domain.campaigns import service as campaigns  # noqa: E402
from notifications import campaigns as campaign_worker  # noqa: E402
from notifications.dispatch import dispatch_due  # noqa: E402
from notifications.push import FcmSender  # noqa: E402
from tests.seed import members_with_devices  # noqa: E402


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000, help="the dispatcher's batch")
    parser.add_argument("--fake", choices=["h2", "python"], default="h2", help="HTTP/2 over TLS (Node) or HTTP/1.1")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LOYALTY_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
    )
    args = parser.parse_args()
    n = args.members
    logging.getLogger("loyalty.push").setLevel(logging.WARNING)
    async with run_setup(args.fake, args.database_url, "loyalty_campaign") as run:
        await members_with_devices(run.conn, n, "C")
        await run.conn.execute("ANALYZE")
        tokens = [r["fcm_token"] for r in await run.conn.fetch("SELECT fcm_token FROM devices")]
        sender = FcmSender(run.credentials, endpoint=run.endpoint)
        raw_ok, (raw_seconds, raw_cpu, raw_fake_cpu), cpu = await raw_pass(sender, tokens, run.fake.pid)

        campaign = await campaigns.create(
            PROGRAM,
            name="Bench",
            audience=campaigns.Audience(tier_ids=(PROGRAM.entry_tier.key,)),
            message=campaigns.Message("Hello", "Come back soon", deep_link="loyalty://offers"),
        )
        await campaigns.schedule(campaign.id, clock.now() + timedelta(seconds=1))
        await asyncio.sleep(1.0)
        cpu.lap()
        started = time.perf_counter()
        queued = await campaign_worker.start_due(PROGRAM)
        start_seconds = time.perf_counter() - started
        while (await campaigns.find(campaign.id)).status != "SENT":  # as the worker's loop does
            await dispatch_due(PROGRAM, sender, batch=args.batch)
        ours_seconds, ours_cpu, ours_fake_cpu = cpu.lap()
        await sender.close()

        started = time.perf_counter()
        stats = await campaigns.stats(await campaigns.find(campaign.id))
        stats_seconds = time.perf_counter() - started

    ours, raw = n / ours_seconds, n / raw_seconds
    per = 1000 / n
    protocol = "HTTP/2 over TLS, Node" if args.fake == "h2" else "HTTP/1.1, Python"
    print(f"a campaign to {n} members with a device, into a local fake FCM ({protocol}):")
    print(
        f"  ours, schedule to last message accepted: {ours_seconds:6.1f} s  {ours:8.0f} msg/s"
        f"  ({queued} queued, {stats.counts.sent} sent, {stats.counts.failed} failed, {stats.counts.suppressed}"
        f" suppressed)  CPU/msg: here {ours_cpu * per:.2f} ms, fake {ours_fake_cpu * per:.2f} ms"
    )
    print(f"    of which the start (audience, recipients, queue): {start_seconds:6.1f} s")
    print(
        f"  raw send_each_async, as many messages:   {raw_seconds:6.1f} s  {raw:8.0f} msg/s  ({raw_ok} accepted)"
        f"  CPU/msg: here {raw_cpu * per:.2f} ms, fake {raw_fake_cpu * per:.2f} ms"
    )
    print(f"  ratio {ours / raw:.2f}   (aim: 0.6 or better)")
    print(f"  campaign stats afterwards: {stats_seconds:.2f} s")


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())

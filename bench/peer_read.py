"""The peer for bench/read: a bare Starlette + asyncpg endpoint under uvicorn (uvloop,
httptools) that answers the app's `Me` and `WalletHistory` as our server does: the same
JWT checks with the same key and claims, the same rows in the same number of queries
(Me: member, qualifying points, wallets, expiring lots; WalletHistory: wallet, entries),
one pool acquire per query as Tortoise does, and the same JSON bytes. Only the tier
arithmetic is imported (pure functions over the program file, no I/O).

    python bench/peer_read.py PORT DSN SECRET PROGRAM_FILE [WORKERS]
"""

from __future__ import annotations

import base64
import json
import math
import sys
import time
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from domain.program.config import load
from domain.tiers.service import current_tier, period_end, status_of, window_start

PORT, DSN, SECRET, PROGRAM = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode(), load(Path(sys.argv[4]))
REQUIRED = ["exp", "iat", "iss", "aud", "sub", "role"]
pool: asyncpg.Pool


def gid(type_name: str, key: object) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{key}".encode()).rstrip(b"=").decode()


def answer(data: dict | None, message: str | None = None) -> Response:
    body = {"data": data} if message is None else {"data": None, "errors": [{"message": message}]}
    return Response(json.dumps(body, separators=(",", ":")).encode(), media_type="application/json")


def member_of(authorization: str | None) -> uuid.UUID | None:
    """The member the bearer token is for, with the checks our TokenIssuer.verify makes."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    try:
        claims = jwt.decode(
            token.strip(),
            SECRET,
            algorithms=["HS256"],
            audience="loyalty-api",
            issuer="loyalty",
            options={"require": REQUIRED, "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        return None
    iat, exp, now = claims["iat"], claims["exp"], time.time()
    for claim in (iat, exp):
        if isinstance(claim, bool) or not isinstance(claim, int | float) or not math.isfinite(claim):
            return None
    if claims["role"] != "member" or iat > now + 60 or exp - iat > 366 * 86400 or exp <= now:
        return None
    if "sid" in claims:
        uuid.UUID(claims["sid"])
    return uuid.UUID(str(claims["sub"]))


def tier(t) -> dict | None:
    return {"id": gid("Tier", t.key), "name": t.name, "rank": t.rank} if t else None


async def me(member_id: uuid.UUID) -> dict:
    row = await pool.fetchrow(
        "SELECT id, member_number, display_name, email, birthday, tier_key FROM members WHERE id = $1", member_id
    )
    now = datetime.now(UTC)
    q = await pool.fetchval(
        "SELECT COALESCE(SUM(qualifying), 0) AS q FROM ledger_entries WHERE member_id = $1 AND occurred_at > $2",
        member_id,
        window_start(PROGRAM, now),
    )
    qualifying = max(0, int(q))
    held, status = current_tier(PROGRAM, row["tier_key"]), status_of(PROGRAM, qualifying, now)
    if status.current.rank >= held.rank:
        current, nxt, to_next, progress = status.current, status.next, status.points_to_next_tier, status.progress
    else:  # held within the period, as status_for does
        nxt = next((t for t in PROGRAM.tiers if t.rank > held.rank), None)
        current, to_next = held, max(0, nxt.threshold - qualifying) if nxt else None
        progress = round(min(1.0, qualifying / nxt.threshold), 4) if nxt else 1.0
    ends = period_end(PROGRAM, now)
    wallets = await pool.fetch(
        "SELECT id, member_id, kind, balance, pending FROM wallets"
        " WHERE member_id = ANY($1::uuid[]) ORDER BY kind DESC",
        [member_id],
    )
    points = [w for w in wallets if w["kind"] == "POINTS"]
    lots = await pool.fetch(
        """
        SELECT wallet_id, expires_at, amount FROM (
            SELECT wallet_id, expires_at, SUM(remaining) AS amount,
                   ROW_NUMBER() OVER (PARTITION BY wallet_id ORDER BY expires_at) AS n
            FROM lots
            WHERE wallet_id = ANY($1::uuid[]) AND state = 'AVAILABLE' AND remaining > 0
              AND expires_at IS NOT NULL
            GROUP BY wallet_id, expires_at
        ) t WHERE n <= $2 ORDER BY wallet_id, expires_at
        """,
        [w["id"] for w in points],
        3,
    )
    return {
        "me": {
            "id": gid("Member", row["id"]),
            "memberNumber": row["member_number"],
            "displayName": row["display_name"],
            "email": row["email"],
            "birthday": row["birthday"].isoformat() if row["birthday"] else None,
            "tier": {
                "current": tier(current),
                "next": tier(nxt),
                "qualifyingPoints": qualifying,
                "pointsToNextTier": to_next,
                "progress": progress,
                "periodEndsAt": ends.isoformat() if ends else None,
            },
            "wallets": [
                {
                    "id": gid("Wallet", w["id"]),
                    "kind": "POINTS",
                    "unit": "POINTS",
                    "balance": int(w["balance"]),
                    "pendingBalance": int(w["pending"]),
                    "expiringSoon": [
                        {"amount": int(lot["amount"]), "expiresAt": lot["expires_at"].isoformat()}
                        for lot in lots
                        if lot["wallet_id"] == w["id"]
                    ],
                }
                for w in points
            ],
        }
    }


async def wallet_history(member_id: uuid.UUID, variables: dict) -> dict:
    kind, _, key = base64.urlsafe_b64decode(variables["walletId"] + "==").decode().partition(":")
    first = variables["first"]
    w = await pool.fetchrow("SELECT id, member_id, kind, balance, pending FROM wallets WHERE id = $1", uuid.UUID(key))
    if kind != "Wallet" or w is None or w["kind"] != "POINTS" or w["member_id"] != member_id:
        return {"node": None}
    rows = await pool.fetch(
        "SELECT id, wallet_id, kind, amount, balance_after, description, explanation, occurred_at"
        f" FROM ledger_entries WHERE wallet_id = $1 ORDER BY id DESC LIMIT {int(first) + 1}",
        w["id"],
    )
    edges = [
        {
            "cursor": base64.urlsafe_b64encode(str(r["id"]).encode()).rstrip(b"=").decode(),
            "node": {
                "id": gid("LedgerEntry", r["id"]),
                "kind": r["kind"],
                "amount": int(r["amount"]),
                "balanceAfter": int(r["balance_after"]),
                "description": r["description"],
                "occurredAt": r["occurred_at"].isoformat(),
            },
        }
        for r in rows[:first]
    ]
    return {
        "node": {
            "id": gid("Wallet", w["id"]),
            "balance": int(w["balance"]),
            "entries": {
                "edges": edges,
                "pageInfo": {"hasNextPage": len(rows) > first, "endCursor": edges[-1]["cursor"] if edges else None},
            },
        }
    }


async def graphql(request: Request) -> Response:
    member_id = member_of(request.headers.get("authorization"))
    if member_id is None:
        return answer(None, "Sign in")
    body = json.loads(await request.body())
    if body.get("operationName") == "Me":
        return answer(await me(member_id))
    return answer(await wallet_history(member_id, body["variables"]))


async def _light_reset(conn: asyncpg.Connection) -> None:
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


@asynccontextmanager
async def lifespan(app: Starlette):
    global pool
    # Our server's pool: 1 to 10 connections, the same light reset.
    async with asyncpg.create_pool(DSN, min_size=1, max_size=10, reset=_light_reset) as pool:
        yield


async def readyz(request: Request) -> Response:
    return Response("ready")


app = Starlette(routes=[Route("/graphql", graphql, methods=["POST"]), Route("/readyz", readyz)], lifespan=lifespan)

if __name__ == "__main__":
    workers = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    # Several workers import the app by name (each process reads the same argv).
    target = "peer_read:app" if workers > 1 else app
    options = dict(host="127.0.0.1", port=PORT, log_level="warning", loop="uvloop", http="httptools")
    uvicorn.run(target, workers=workers, app_dir=str(Path(__file__).parent), **options)

"""bench/launch_bytes: the bytes on the wire for the member app's launch documents.

    .venv/bin/python bench/launch_bytes.py [--database-url URL] [--purchases 12] [--rewards 8]

Starts a real `loyalty serve` (the demo program, a trusted-documents manifest of the two
documents below) on a scratch database, seeds a member with --purchases ledger entries
and --rewards rewards, then sends the app's launch documents, `Me` (the contract's, with
its fragments) and the public `Catalogue`, each as text (POST), as `documentId` (POST),
and the catalogue by GET (cacheable, then revalidated: 304), with and without
`Accept-Encoding: gzip`. Prints, per variant, the request's and the response's bytes as
HTTP/1.1 sends them: the start line, the headers and the body as it went (compressed when
gzip was used).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from edge_server import SECRET, arguments, loyalty_serve

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from api.documents import manifest_of  # noqa: E402
from domain.identity.tokens import Role, TokenIssuer  # noqa: E402

CATALOGUE = """query Catalogue {
  program {
    name
    currency
    tiers { id name rank threshold }
    stores { id key name latitude longitude radiusMeters }
    rewards(first: 20) { edges { node { id name description pointsCost available } } }
  }
}
"""


def launch_documents(folder: Path) -> dict[str, tuple[str, str]]:
    """{name: (id, text)}: the contract's Me (with the fragments it uses) and Catalogue."""
    contract = manifest_of([ROOT / "contract" / "operations" / "member-app.graphql"])
    (folder / "catalogue.graphql").write_text(CATALOGUE)
    ours = manifest_of([folder / "catalogue.graphql"])
    me = next((k, t) for k, t in contract.items() if "query Me " in t)
    return {"Me": me, "Catalogue": next(iter(ours.items()))}


def request_bytes(request: httpx.Request) -> int:
    target = urlsplit(str(request.url))
    line = f"{request.method} {target.path}{'?' + target.query if target.query else ''} HTTP/1.1\r\n"
    headers = sum(len(k) + 2 + len(v) + 2 for k, v in request.headers.raw)
    return len(line) + headers + 2 + len(request.content)


def response_bytes(response: httpx.Response) -> int:
    line = len(f"HTTP/1.1 {response.status_code} {response.reason_phrase}\r\n")
    headers = sum(len(k) + 2 + len(v) + 2 for k, v in response.headers.raw)
    return line + headers + 2 + response.num_bytes_downloaded


def seed(http: httpx.Client, purchases: int, rewards: int) -> str:
    issuer = TokenIssuer(SECRET.encode())
    staff = {"Authorization": f"Bearer {issuer.mint(Role.STAFF, 'till-1')[0]}"}
    marketer = {"Authorization": f"Bearer {issuer.mint(Role.MARKETER, 'mia')[0]}"}
    enrolled = http.post(
        "/graphql",
        headers=staff,
        json={
            "query": 'mutation($e: String!) { enrollMember(input: { email: $e, displayName: "Ana" }) '
            "{ member { id } userErrors { code } } }",
            "variables": {"e": "ana@example.com"},
        },
    ).json()
    member_id = enrolled["data"]["enrollMember"]["member"]["id"]
    for n in range(purchases):
        body = http.post(
            "/graphql",
            headers=staff,
            json={
                "query": "mutation($m: ID!, $x: String!) { recordPurchase(input: { memberId: $m, externalId: $x, "
                'amount: "12.50", currency: "EUR", channel: STORE, storeId: "paris-1" }) { userErrors { code } } }',
                "variables": {"m": member_id, "x": f"R-{n}"},
            },
        ).json()
        assert not body.get("errors") and not body["data"]["recordPurchase"]["userErrors"], body
    for n in range(rewards):
        body = http.post(
            "/graphql",
            headers=marketer,
            json={
                "query": "mutation($n: String!) { createReward(input: { name: $n, pointsCost: 500, "
                'description: "A reward the app lists on its launch screen" }) { userErrors { code } } }',
                "variables": {"n": f"Reward {n + 1}"},
            },
        ).json()
        assert not body.get("errors"), body
    from api.relay import uuid_of

    return issuer.mint(Role.MEMBER, str(uuid_of(member_id, "Member")))[0]


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--purchases", type=int, default=12)
    parser.add_argument("--rewards", type=int, default=8)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    documents = launch_documents(folder)
    manifest = folder / "manifest.json"
    manifest.write_text(json.dumps(dict(documents.values())))
    env = {
        "LOYALTY_TRUSTED_DOCUMENTS": str(manifest),
        "LOYALTY_PROGRAM": str(ROOT / "domain" / "program" / "demo.toml"),
    }
    with loyalty_serve(args.database_url, **env) as (url, _pid), httpx.Client(base_url=url, timeout=60) as http:
        member = seed(http, args.purchases, args.rewards)
        rows = []
        for name, (key, text) in documents.items():
            auth = {"Authorization": f"Bearer {member}"} if name == "Me" else {}
            for encoding in ("identity", "gzip"):
                headers = {**auth, "Accept-Encoding": encoding, "Accept": "application/graphql-response+json"}
                variants = [
                    ("POST text", http.build_request("POST", "/graphql", json={"query": text}, headers=headers)),
                    (
                        "POST documentId",
                        http.build_request("POST", "/graphql", json={"documentId": key}, headers=headers),
                    ),
                ]
                if name == "Catalogue":
                    variants.append(
                        (
                            "GET documentId",
                            http.build_request("GET", "/graphql", params={"documentId": key}, headers=headers),
                        )
                    )
                for label, request in variants:
                    response = http.send(request)
                    body = response.json()
                    assert response.status_code == 200 and not body.get("errors"), body
                    rows.append(
                        (
                            name,
                            label,
                            encoding,
                            request_bytes(request),
                            response_bytes(response),
                            response.headers.get("content-encoding", "-"),
                        )
                    )
                    if label == "GET documentId":
                        again = http.build_request(
                            "GET",
                            "/graphql",
                            params={"documentId": key},
                            headers={**headers, "If-None-Match": response.headers["etag"]},
                        )
                        revalidated = http.send(again)
                        assert revalidated.status_code == 304, revalidated.status_code
                        rows.append(
                            (
                                name,
                                "GET documentId, If-None-Match (304)",
                                encoding,
                                request_bytes(again),
                                response_bytes(revalidated),
                                "-",
                            )
                        )
    print(f"{'document':<10} {'variant':<38} {'Accept-Enc.':<15} {'request B':>9} {'response B':>10}  content-encoding")
    for name, label, encoding, sent, received, used in rows:
        print(f"{name:<10} {label:<38} {encoding:<15} {sent:>9} {received:>10}  {used}")


if __name__ == "__main__":
    main()

"""`loyalty seed --demo`: a few members of the demo café, and tokens to try the API."""

from __future__ import annotations

from datetime import date, timedelta

from api.relay import to_global_id
from domain.identity.tokens import Role, TokenIssuer
from domain.members import service as members
from domain.program.config import load
from domain.settings import Settings

DEMO_MEMBERS = [
    members.Profile(
        email="ana@example.com",
        display_name="Ana Souza",
        birthday=date(1990, 4, 12),
        timezone="Europe/Lisbon",
        locale="pt-PT",
    ),
    members.Profile(
        email="kenji@example.com",
        display_name="Kenji Sato",
        birthday=date(1985, 11, 3),
        timezone="Asia/Tokyo",
        locale="ja",
    ),
    members.Profile(email="lea@example.com", display_name="Léa Martin", timezone="Europe/Paris", locale="fr"),
]


async def seed_demo(settings: Settings) -> None:
    """Enrol the demo members (once: seeding twice finds them) and print tokens."""
    program = load(settings.program)
    rows = []
    for profile in DEMO_MEMBERS:
        rows.append(await members.by_email(profile.email) or await members.enroll(program, profile))
    issuer = TokenIssuer(settings.signing_key())
    day = timedelta(days=1)
    print("Demo members:")
    for row in rows:
        member_id = to_global_id("Member", row.id)
        print(f"  {row.display_name or '-':<12} {row.email:<20} number {row.member_number}  id {member_id}")
    print("\nTokens (valid 24 hours):")
    print(f"  member (Ana): {issuer.mint(Role.MEMBER, str(rows[0].id), day)[0]}")
    print(f"  staff:        {issuer.mint(Role.STAFF, 'demo-till', day)[0]}")
    print(f"  marketer:     {issuer.mint(Role.MARKETER, 'demo-marketer', day)[0]}")
    print(
        "\nTry:  curl -s localhost:8000/graphql -H 'Authorization: Bearer <member token>' "
        "-H 'Content-Type: application/json' -d '{\"query\":\"{ me { displayName memberNumber } }\"}'"
    )

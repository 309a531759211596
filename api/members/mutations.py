from __future__ import annotations

from datetime import date

import strawberry
from strawberry.types import Info

from api.auth import IsMember, IsStaff, member_id
from api.errors import UserError
from api.members.types import Member
from domain.errors import DomainError
from domain.members import service as members


@strawberry.input
class EnrollMemberInput:
    email: str
    display_name: str | None = None
    birthday: date | None = None
    timezone: str | None = strawberry.field(default=None, description="IANA zone; default UTC.")
    locale: str | None = strawberry.field(default=None, description="BCP 47 tag; default en.")
    referral_code: str | None = strawberry.field(default=None, description="A friend's code: both get a bonus.")


@strawberry.type
class EnrollMemberPayload:
    member: Member | None
    user_errors: list[UserError]


@strawberry.input
class UpdatePreferencesInput:
    push_marketing: bool | None = None
    location_nudges: bool | None = None
    timezone: str | None = None
    locale: str | None = None


@strawberry.input
class UpdateProfileInput:
    display_name: str | None = None
    birthday: date | None = strawberry.field(default=None, description="Can be set once; staff correct it afterwards.")


@strawberry.type
class MemberPayload:
    member: Member | None
    user_errors: list[UserError]


@strawberry.type
class MembersMutation:
    @strawberry.mutation(
        permission_classes=[IsStaff],
        description="Enrol a member at the till or shop. An email already enrolled: ALREADY_EXISTS.",
    )
    async def enroll_member(self, info: Info, input: EnrollMemberInput) -> EnrollMemberPayload:
        profile = members.Profile(
            email=input.email,
            display_name=input.display_name,
            birthday=input.birthday,
            timezone=input.timezone,
            locale=input.locale,
        )
        try:
            row = await members.enroll(info.context.services.program, profile, referral_code=input.referral_code)
        except DomainError as exc:
            return EnrollMemberPayload(member=None, user_errors=UserError.of(exc))
        return EnrollMemberPayload(member=Member.of(row), user_errors=[])

    @strawberry.mutation(permission_classes=[IsMember], description="Consent, time zone, language.")
    async def update_preferences(self, info: Info, input: UpdatePreferencesInput) -> MemberPayload:
        try:
            row = await members.update_preferences(
                member_id(info),
                push_marketing=input.push_marketing,
                location_nudges=input.location_nudges,
                timezone=input.timezone,
                locale=input.locale,
            )
        except DomainError as exc:
            return MemberPayload(member=None, user_errors=UserError.of(exc))
        return MemberPayload(member=Member.of(row), user_errors=[])

    @strawberry.mutation(permission_classes=[IsMember], description="Display name and birthday.")
    async def update_profile(self, info: Info, input: UpdateProfileInput) -> MemberPayload:
        profile = members.Profile(display_name=input.display_name, birthday=input.birthday)
        try:
            row = await members.update_profile(member_id(info), profile)
        except DomainError as exc:
            return MemberPayload(member=None, user_errors=UserError.of(exc))
        return MemberPayload(member=Member.of(row), user_errors=[])

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from api.errors import Unauthenticated, UserError
from api.members.types import Member
from domain.errors import DomainError, InvalidCredentials
from domain.identity import sessions


@strawberry.input
class SignInWithFirebaseInput:
    id_token: str = strawberry.field(description="The ID token from the Firebase Auth SDK.")


@strawberry.input
class RefreshSessionInput:
    refresh_token: str


@strawberry.input
class SignOutInput:
    refresh_token: str


@strawberry.type(description="Tokens for the app. Keep the refresh token in secure storage.")
class SessionPayload:
    access_token: str | None
    access_token_expires_at: datetime | None
    refresh_token: str | None = strawberry.field(description="Works once; refreshing returns the next.")
    member: Member | None
    user_errors: list[UserError]

    @classmethod
    def of(cls, session: sessions.Session) -> SessionPayload:
        return cls(
            access_token=session.access_token,
            access_token_expires_at=session.access_token_expires_at,
            refresh_token=session.refresh_token,
            member=Member.of(session.member),
            user_errors=[],
        )

    @classmethod
    def failed(cls, error: DomainError) -> SessionPayload:
        return cls(
            access_token=None,
            access_token_expires_at=None,
            refresh_token=None,
            member=None,
            user_errors=UserError.of(error),
        )


@strawberry.type
class SignOutPayload:
    user_errors: list[UserError]


@strawberry.type
class IdentityMutation:
    @strawberry.mutation(
        description="Sign in with a Firebase ID token; enrols the member on first sign-in. "
        "A refused token is UNAUTHENTICATED."
    )
    async def sign_in_with_firebase(self, info: Info, input: SignInWithFirebaseInput) -> SessionPayload:
        services = info.context.services
        try:
            identity = await services.firebase.verify(input.id_token)
            session = await sessions.sign_in(services.program, identity, services.tokens, services.refresh_ttl)
        except InvalidCredentials as exc:
            raise Unauthenticated(exc.message) from None
        except DomainError as exc:
            return SessionPayload.failed(exc)
        return SessionPayload.of(session)

    @strawberry.mutation(
        description="A new access token and the next refresh token. A reused refresh token "
        "revokes the whole session: UNAUTHENTICATED."
    )
    async def refresh_session(self, info: Info, input: RefreshSessionInput) -> SessionPayload:
        services = info.context.services
        try:
            session = await sessions.refresh(input.refresh_token, services.tokens, services.refresh_ttl)
        except InvalidCredentials as exc:
            raise Unauthenticated(exc.message) from None
        return SessionPayload.of(session)

    @strawberry.mutation(description="End the app session that holds this refresh token.")
    async def sign_out(self, input: SignOutInput) -> SignOutPayload:
        await sessions.sign_out(input.refresh_token)
        return SignOutPayload(user_errors=[])

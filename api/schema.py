"""The GraphQL schema: root types assembled from each area's mixins, and the guards
every request passes (depth, aliases, tokens, error masking, caches)."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from functools import partial
from typing import Any

import strawberry
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension
from strawberry.extensions.max_aliases import create_validator as alias_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext, Info
from strawberry.types.execution import StreamExecutionResult

from api.arguments import check_text
from api.audit.queries import AuditQuery
from api.auth import IsSignedIn
from api.campaigns.mutations import CampaignsMutation
from api.campaigns.types import Campaign
from api.cost import DocumentCache, PriceBeforeValidating
from api.draws.mutations import DrawsMutation, DrawsQuery
from api.draws.types import Draw
from api.errors import MaskUnexpectedErrors, code_validation_errors, give_codes
from api.execution import PlainFieldsExecutor
from api.identity.mutations import IdentityMutation
from api.kpis.queries import KpisQuery
from api.limits import refuse_anonymous, refuse_limited_fields
from api.members.mutations import MembersMutation
from api.members.queries import MembersQuery
from api.members.types import Member
from api.notifications.mutations import Device, LocationMutation, Notification, NotificationsMutation, Store
from api.observability import count_operation
from api.offers.mutations import OffersMutation
from api.offers.types import Offer
from api.purchases.mutations import Purchase, PurchasesMutation
from api.relay import Connection, Node, connection, from_global_id, page, time_position
from api.rewards.mutations import RewardsMutation, RewardsQuery, reward_cursor
from api.rewards.types import Coupon, Reward
from api.scalars import PlainDecimal
from api.segments.mutations import SegmentsMutation, SegmentsQuery
from api.segments.types import Segment
from api.tiers.types import Tier
from api.wallets.mutations import ActivitiesMutation, WalletsMutation
from api.wallets.subscriptions import WalletsSubscription
from api.wallets.types import CashbackEntry, CashbackWallet, LedgerEntry, Wallet
from domain.campaigns import service as campaigns
from domain.draws import service as draws
from domain.identity import access
from domain.members import service as members
from domain.notifications import service as notifications
from domain.offers import service as offers
from domain.purchases import service as purchases
from domain.rewards import service as rewards
from domain.segments import service as segments
from domain.stores import service as stores
from domain.wallets import service as wallets

log = logging.getLogger("loyalty.api")

# Generous for every document the apps send (the deepest is 6), far below abuse.
MAX_DEPTH = 12
MAX_ALIASES = 30
MAX_TOKENS = 2_000


def _uuid(key: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(key)
    except ValueError:
        return None


def _seq(key: str) -> int | None:
    """A ledger entry's key: a positive integer that fits its column."""
    return int(key) if key.isascii() and key.isdigit() and len(key) < 19 else None


def _may_see(info: Info, kind: str, owner: uuid.UUID) -> bool:
    return access.may_see(info.context.principal(), kind, owner)


async def _member_node(info: Info, key: str) -> Member | None:
    member_id = _uuid(key)
    if member_id is None or not _may_see(info, "Member", member_id):
        return None  # another member's data: as if it did not exist
    row = await members.find(member_id)
    return Member.of(row) if row else None


async def _wallet_row(info: Info, key: str, kind: str, node: str) -> wallets.WalletRow | None:
    wallet_id = _uuid(key)
    row = await wallets.wallet(wallet_id) if wallet_id else None
    if row is None or row.kind != kind or not _may_see(info, node, row.member_id):
        return None
    return row


async def _wallet_node(info: Info, key: str) -> Wallet | None:
    row = await _wallet_row(info, key, "POINTS", "Wallet")
    return Wallet.of(row) if row else None


async def _cashback_wallet_node(info: Info, key: str) -> CashbackWallet | None:
    row = await _wallet_row(info, key, "CASHBACK", "CashbackWallet")
    return CashbackWallet.of(info.context.services.program, row) if row else None


async def _entry_row(info: Info, key: str, kind: str, node: str) -> wallets.EntryRow | None:
    seq = _seq(key)
    found = await wallets.entry(seq) if seq else None
    if found is None or found.wallet_kind != kind or not _may_see(info, node, found.member_id):
        return None
    return found.entry


async def _ledger_entry_node(info: Info, key: str) -> LedgerEntry | None:
    row = await _entry_row(info, key, "POINTS", "LedgerEntry")
    return LedgerEntry.of(row) if row else None


async def _cashback_entry_node(info: Info, key: str) -> CashbackEntry | None:
    row = await _entry_row(info, key, "CASHBACK", "CashbackEntry")
    return CashbackEntry.of(info.context.services.program, row) if row else None


async def _reward_node(info: Info, key: str) -> Reward | None:
    reward_id = _uuid(key)
    if reward_id is None:
        return None
    principal = info.context.principal()
    row = await rewards.find(info.context.services.program, reward_id, principal.member_id)
    return Reward.of(row) if row else None


async def _coupon_node(info: Info, key: str) -> Coupon | None:
    coupon_id = _uuid(key)
    row = await rewards.coupon(coupon_id) if coupon_id else None
    if row is None or not _may_see(info, "Coupon", row.member_id):
        return None
    return Coupon.of(row)


async def _purchase_node(info: Info, key: str) -> Purchase | None:
    purchase_id = _uuid(key)
    found = await purchases.find(purchase_id) if purchase_id else None
    if found is None or not _may_see(info, "Purchase", found.member_id):
        return None
    return Purchase.of(found, info.context.services.program.currency_decimals)


async def _notification_node(info: Info, key: str) -> Notification | None:
    notification_id = _uuid(key)
    row = await notifications.notification(notification_id) if notification_id else None
    if row is None or not _may_see(info, "Notification", row.member_id):
        return None
    return Notification.of(row)


async def _device_node(info: Info, key: str) -> Device | None:
    device_id = _uuid(key)
    row = await notifications.device(device_id) if device_id else None
    if row is None or not _may_see(info, "Device", row.member_id):
        return None
    return Device.of(row)


async def _store_node(info: Info, key: str) -> Store | None:
    place = await stores.place(info.context.services.program, key)
    return Store.of(place) if place else None


async def _segment_node(info: Info, key: str) -> Segment | None:
    segment_id = _uuid(key)
    if segment_id is None or not access.may_see_program_object(info.context.principal(), "Segment"):
        return None  # segments are the marketers' view of the members
    row = await segments.find(segment_id)
    return Segment.of(row) if row else None


async def _offer_node(info: Info, key: str) -> Offer | None:
    offer_id = _uuid(key)
    if offer_id is None:
        return None
    principal = info.context.principal()
    if access.may_see_program_object(principal, "Offer"):
        row = await offers.find(offer_id)
    elif principal.member_id is not None:  # a member, as `me { offers }` shows it to them
        row = await offers.seen_by(info.context.services.program, principal.member_id, offer_id)
    else:
        row = None
    return Offer.of(row) if row else None


async def _draw_node(info: Info, key: str) -> Draw | None:
    draw_id = _uuid(key)
    row = await draws.find(draw_id, info.context.principal().member_id) if draw_id else None
    return Draw.of(row) if row else None


async def _tier_node(info: Info, key: str) -> Tier | None:
    tier = info.context.services.program.tier(key)
    return Tier.of(tier) if tier else None


async def _campaign_node(info: Info, key: str) -> Campaign | None:
    campaign_id = _uuid(key)
    if campaign_id is None or not access.may_see_program_object(info.context.principal(), "Campaign"):
        return None
    row = await campaigns.find(campaign_id)
    return Campaign.of(row) if row else None


# One resolver per type that implements Node (a test holds every implementer to it).
NODE_RESOLVERS = {
    "Member": _member_node,
    "Tier": _tier_node,
    "Wallet": _wallet_node,
    "CashbackWallet": _cashback_wallet_node,
    "LedgerEntry": _ledger_entry_node,
    "CashbackEntry": _cashback_entry_node,
    "Reward": _reward_node,
    "Coupon": _coupon_node,
    "Purchase": _purchase_node,
    "Notification": _notification_node,
    "Device": _device_node,
    "Store": _store_node,
    "Segment": _segment_node,
    "Offer": _offer_node,
    "Draw": _draw_node,
    "Campaign": _campaign_node,
}


@strawberry.type(description="The program's public rules: currency and the tier ladder.")
class Program:
    """The same for everyone: open without a token, and cacheable (README, "Cacheable reads")."""

    name: str
    currency: str
    tiers: list[Tier]

    @strawberry.field(description="The program's stores.")
    async def stores(self, info: Info) -> list[Store]:
        return [Store.of(place) for place in await stores.all_places(info.context.services.program)]

    @strawberry.field(description="The rewards open to every tier, newest first (a member's own list: `rewards`).")
    async def rewards(self, info: Info, first: int = 20, after: str | None = None) -> Connection[Reward]:
        p = page(first, after)
        rows = await rewards.catalog(info.context.services.program, p.first + 1, time_position(p.after))
        return connection([Reward.of(r) for r in rows], p.first, reward_cursor)


@strawberry.type
class Query(MembersQuery, RewardsQuery, SegmentsQuery, AuditQuery, KpisQuery, DrawsQuery):
    @strawberry.field(
        permission_classes=[IsSignedIn],
        description="Any object by its global ID; null when it does not exist or is not yours.",
    )
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        type_name, key = from_global_id(id)
        resolver = NODE_RESOLVERS.get(type_name)
        return await resolver(info, key) if resolver else None

    @strawberry.field(description="The program: tiers, stores and catalogue. Needs no token.")
    def program(self, info: Info) -> Program:
        p = info.context.services.program
        return Program(name=p.program.name, currency=p.currency, tiers=[Tier.of(t) for t in p.tiers])


@strawberry.type
class Mutation(
    MembersMutation,
    IdentityMutation,
    PurchasesMutation,
    WalletsMutation,
    ActivitiesMutation,
    RewardsMutation,
    NotificationsMutation,
    LocationMutation,
    SegmentsMutation,
    OffersMutation,
    DrawsMutation,
    CampaignsMutation,
):
    pass


@strawberry.type
class Subscription(WalletsSubscription):
    pass


# graphql-core ends validation and coercion messages with the names it guessed the
# client meant ("Did you mean 'members'?", "… the enum value 'STORE'?"), and quotes
# the schema's names ("on type 'Query'", "in 'Channel' enum").
SUGGESTION = re.compile(r"\s*Did you mean .*\?\s*$", re.DOTALL)
QUOTED = re.compile(r"'([^'\s]{1,100})'")


def _said_only_what_was_sent(message: str, execution_context: ExecutionContext | None) -> str:
    """The message without suggestions, and without any quoted name the client did not send."""
    message = SUGGESTION.sub("", message)
    sent = ""
    if execution_context is not None:
        variables = json.dumps(execution_context.variables or {}, default=str, ensure_ascii=False)
        sent = (execution_context.query or "") + variables
    return QUOTED.sub(lambda m: m.group(0) if m.group(1) in sent else "'…'", message)


class LoyaltySchema(strawberry.Schema):
    # In production no message names a type, field or value the client did not send.
    hide_suggestions = False

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        if len(extensions) == 1 and type(extensions[0]) is Guards:
            return GuardsRunner(execution_context, extensions)
        return super().create_extensions_runner(execution_context, extensions)

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # Every error list passes here once, before it is formatted: over HTTP and
        # WebSocket, from parsing, validation, coercion and execution alike.
        # Unexpected errors are logged (with the request id) where they are masked;
        # the rest are the client's mistakes, not ours.
        give_codes(errors)
        for error in errors:
            if self.hide_suggestions:
                error.message = _said_only_what_was_sent(error.message, execution_context)
            log.debug("client error: %s", error.message)


# Built once: the limiters make a new rule class at each call.
GUARD_RULES = [depth_rule(MAX_DEPTH, None), alias_rule(MAX_ALIASES)]
PRODUCTION_RULES = [*GUARD_RULES, NoSchemaIntrospectionCustomRule]


class Guards(SchemaExtension):
    """What every operation passes, in one extension: strawberry builds each extension
    and wraps each of its hooks anew for every operation, and eight of them took ~5 % of
    the CPU of the app's `Me`. In order:

    - the operation: anonymous traffic counted (api/limits.py), the validation rules
      and the token limit set; at its end, unexpected errors masked (api/errors.py) and
      then the operation counted with the codes masking set (api/observability.py);
    - parsing: a cached or trusted document is not parsed again (api/cost.py);
    - validation: priced first, then validated unless cached (api/cost.py); validation
      errors get their code;
    - execution: the limited root fields counted (api/limits.py), and every string
      argument checked to be text (api/arguments.py)."""

    def __init__(self, documents: DocumentCache, rules: tuple) -> None:
        self.rules = rules
        self.pricing = PriceBeforeValidating(documents)
        self.mask = MaskUnexpectedErrors()

    async def on_operation(self) -> AsyncIterator[None]:
        ec = self.execution_context
        self.mask.execution_context = ec
        try:
            await refuse_anonymous(ec)
            ec.validation_rules = ec.validation_rules + self.rules
            ec.parse_options["max_tokens"] = MAX_TOKENS
            self.mask._stream_result_processed = False
            yield
            self.mask.finish()
        finally:  # also when parsing raised (a document over the token limit)
            count_operation(ec)

    def on_parse(self) -> Iterator[None]:
        self.pricing.parse(self.execution_context)
        yield

    async def on_validate(self) -> AsyncIterator[None]:
        ec = self.execution_context
        await self.pricing.validate(ec)
        yield
        code_validation_errors(ec.pre_execution_errors)
        self.pricing.validated(ec)

    async def on_execute(self) -> AsyncIterator[None]:
        ec = self.execution_context
        await refuse_limited_fields(ec)
        check_text(ec)
        yield

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        yield from self.mask.on_stream_result(result)


class _AsyncStage:
    """One stage's async hook, entered as strawberry's runner enters it (an async
    context manager made of the async generator), without the per-request inspection,
    wrapper and exit stack strawberry's runner builds around each hook."""

    __slots__ = ("hook", "manager")

    def __init__(self, hook: Any) -> None:
        self.hook = hook

    async def __aenter__(self) -> None:
        self.manager = self.hook()
        await self.manager.__aenter__()

    async def __aexit__(self, *exc: Any) -> bool | None:
        return await self.manager.__aexit__(*exc)

    def __enter__(self) -> None:
        raise RuntimeError(f"SchemaExtension hook {self.hook} failed to complete synchronously.")

    def __exit__(self, *exc: Any) -> None:  # pragma: no cover - never entered
        pass


class _SyncStage:
    """One stage's generator hook: entered with `with` or `async with` alike."""

    __slots__ = ("hook", "manager")

    def __init__(self, hook: Any) -> None:
        self.hook = hook

    def __enter__(self) -> None:
        self.manager = self.hook()
        self.manager.__enter__()

    def __exit__(self, *exc: Any) -> bool | None:
        return self.manager.__exit__(*exc)

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(self, *exc: Any) -> bool | None:
        return self.__exit__(*exc)


_on_operation = contextlib.asynccontextmanager(Guards.on_operation)
_on_parse = contextlib.contextmanager(Guards.on_parse)
_on_validate = contextlib.asynccontextmanager(Guards.on_validate)
_on_execute = contextlib.asynccontextmanager(Guards.on_execute)


class GuardsRunner(SchemaExtensionsRunner):
    """strawberry's extension runner for the schema's one extension, Guards, whose hooks
    are known when the module loads: strawberry's runner inspects each hook, wraps it
    in a new context manager and opens an exit stack for it at every stage of every
    operation (~20 % of the CPU of `Me` under cProfile)."""

    def __init__(self, execution_context: ExecutionContext, extensions: list[SchemaExtension]) -> None:
        super().__init__(execution_context, extensions)
        self.guards = extensions[0]

    def operation(self) -> Any:
        return _AsyncStage(partial(_on_operation, self.guards))

    def parsing(self) -> Any:
        return _SyncStage(partial(_on_parse, self.guards))

    def validation(self) -> Any:
        return _AsyncStage(partial(_on_validate, self.guards))

    def executing(self) -> Any:
        return _AsyncStage(partial(_on_execute, self.guards))


def build_schema(*, production: bool = False) -> strawberry.Schema:
    rules = tuple(PRODUCTION_RULES if production else GUARD_RULES)
    documents = DocumentCache()  # one per schema: the production rules validate differently
    schema = LoyaltySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[lambda: Guards(documents, rules)],
        scalar_overrides={Decimal: PlainDecimal},
        execution_context_class=PlainFieldsExecutor,
    )
    schema.hide_suggestions = production
    schema.documents = documents
    return schema


def sdl() -> str:
    return build_schema().as_str() + "\n"

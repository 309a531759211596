"""Per-request dataloaders: lists of members load their wallets and expiries in one query each."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from strawberry.dataloader import DataLoader

from domain.wallets import service as wallets
from domain.wallets.service import WalletRow


async def _wallets(member_ids: list[uuid.UUID]) -> list[list[WalletRow]]:
    found = await wallets.wallets_of(list(member_ids))
    return [found[m] for m in member_ids]


async def _expiring(wallet_ids: list[uuid.UUID]) -> list[list]:
    found = await wallets.expiring_soon(list(wallet_ids))
    return [found[w] for w in wallet_ids]


@dataclass
class Loaders:
    wallets: DataLoader = field(default_factory=lambda: DataLoader(load_fn=_wallets))
    expiring: DataLoader = field(default_factory=lambda: DataLoader(load_fn=_expiring))

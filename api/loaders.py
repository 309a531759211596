"""Per-request dataloaders: lists of members load their wallets and expiries in one query
each. Loading wallets reads their POINTS wallets' expiries in the same statement and primes
`expiring` with them: `Me` asks for both, one round trip and one pool checkout instead of
two (a wallet reached otherwise, by `node`, loads its expiries on its own)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from strawberry.dataloader import DataLoader

from domain.wallets import service as wallets
from domain.wallets.service import WalletRow


async def _expiring(wallet_ids: list[uuid.UUID]) -> list[list]:
    found = await wallets.expiring_soon(list(wallet_ids))
    return [found[w] for w in wallet_ids]


@dataclass
class Loaders:
    wallets: DataLoader = field(init=False)
    expiring: DataLoader = field(default_factory=lambda: DataLoader(load_fn=_expiring))

    def __post_init__(self) -> None:
        self.wallets = DataLoader(load_fn=self._wallets)

    async def _wallets(self, member_ids: list[uuid.UUID]) -> list[list[WalletRow]]:
        found, expiring = await wallets.wallets_expiring(list(member_ids))
        self.expiring.prime_many(expiring)
        return [found[m] for m in member_ids]

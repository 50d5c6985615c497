"""In-process ``AccountStore`` (tests, embedding, demos): atomic because the event loop is."""

from __future__ import annotations

import copy

from .base import AlreadyExists, AuthenticatorRecord, GrantRecord, GrantUse, TokenRecord


class MemoryAccountStore:
    def __init__(self, grants: dict[str, GrantRecord], tokens: dict[str, TokenRecord]) -> None:
        self._data: dict[str, AuthenticatorRecord] = {}
        self._grants = grants  # the grant and token stores' own dicts (read only)
        self._tokens = tokens

    async def add(self, record: AuthenticatorRecord) -> None:
        taken = record.credential_id is not None and any(
            r.credential_id == record.credential_id for r in self._data.values()
        )
        if record.authenticator_id in self._data or taken:
            raise AlreadyExists(record.authenticator_id)
        self._data[record.authenticator_id] = copy.deepcopy(record)

    async def get(self, authenticator_id: str) -> AuthenticatorRecord | None:
        return copy.deepcopy(self._data.get(authenticator_id))

    async def by_credential(self, credential_id: str) -> AuthenticatorRecord | None:
        found = next((r for r in self._data.values() if r.credential_id == credential_id), None)
        return copy.deepcopy(found)

    async def list_for(self, population: str, username: str) -> list[AuthenticatorRecord]:
        mine = [r for r in self._data.values() if r.population == population and r.username == username]
        return [copy.deepcopy(r) for r in sorted(mine, key=lambda r: (r.created_at, r.authenticator_id))]

    async def remove(self, population: str, username: str, authenticator_id: str) -> bool:
        rec = self._data.get(authenticator_id)
        if rec is None or rec.population != population or rec.username != username:
            return False
        del self._data[authenticator_id]
        return True

    async def use_passkey(self, authenticator_id: str, sign_count: int, backup_state: bool, now: int) -> bool:
        rec = self._data.get(authenticator_id)
        if rec is None or rec.kind != "passkey":
            return False
        if not (rec.sign_count < sign_count or rec.sign_count == sign_count == 0):
            return False
        rec.sign_count, rec.backup_state, rec.last_used_at = sign_count, backup_state, now
        return True

    async def use_totp_step(self, authenticator_id: str, step: int, now: int) -> bool:
        rec = self._data.get(authenticator_id)
        if rec is None or rec.kind != "totp" or (rec.last_step is not None and rec.last_step >= step):
            return False
        rec.last_step, rec.last_used_at = step, now
        return True

    async def grants_of(self, subject: str) -> list[GrantUse]:
        out = []
        for g in self._grants.values():
            if g.subject != subject or g.revoked_at is not None:
                continue
            times = [t.created_at for t in self._tokens.values() if t.grant_id == g.grant_id]
            out.append(GrantUse(copy.deepcopy(g), max(times) if times else None))
        return sorted(out, key=lambda u: (-u.grant.created_at, u.grant.grant_id))

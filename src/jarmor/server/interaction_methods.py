"""The TOTP and passkey sign-in methods of the authorization interaction (``lifecycle.Verifier`` adapters).

* ``TotpVerifier`` — a second factor of the user the interaction has identified: besides the interaction's
  own counts (``lifecycle.sign_in``), codes are counted per account in their own count, which a right
  password does not reset (``account/signin_views.OTP_ACCOUNT_NS``), before anything is checked; a code is
  used once (``server/totp.py``).
* ``PasskeyVerifier`` — serves ``passkey`` and ``passkey-device`` and names the one the credential proves
  (its backup-eligible flag). Its challenge is bound to the interaction and the browser's binding (made by
  ``bound_ceremony`` when the sign-in page renders; single use when spent). The attempt is counted against
  the credential id (the account is unknown until the signature is verified).
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from ..protocol.context import Environment
from ..protocol.interaction.lifecycle import Verified, Verifier
from ..protocol.interaction.methods import PASSKEY, PASSKEY_DEVICE, TOTP
from ..protocol.interaction.record import Interaction
from . import authn, passkeys, signin
from .account.signin_views import OTP_ACCOUNT_NS
from .account_lifecycle import is_removed
from .keyprotect import KeyProtector
from .keys import Keyring


class TotpVerifier:
    def __init__(self, env: Environment, protector: KeyProtector) -> None:
        self.env = env
        self.protector = protector

    def account(self, form: Mapping[str, str], interaction: Interaction) -> str | None:
        return interaction.subject

    async def verify(self, form: Mapping[str, str], interaction: Interaction) -> Verified | None:
        subject, env = interaction.subject, self.env
        if subject is None:
            return None
        s = env.settings
        limit = signin.AttemptLimit(signin.Per.ACCOUNT, OTP_ACCOUNT_NS, s.login_max_failures, s.login_lockout_window)
        attempt = await signin.reserve(env.store.ephemeral, [(limit, subject)])
        if attempt.refused is not None:
            return None
        if not await authn.check_totp(env.store, self.protector, subject, form.get("code", ""), env.now()):
            return None
        await signin.succeeded(env.store.ephemeral, attempt)
        return Verified(subject, TOTP.name)

    async def enrolled(self, subject: str) -> bool:
        return await authn.has_totp(self.env.store, subject)


def ceremony_binding(interaction: Interaction) -> str:
    """What an interaction's passkey challenge is bound to: the interaction's browser binding."""
    return f"interaction:{interaction.bind}"


def bound_ceremony(env: Environment, interaction: Interaction) -> passkeys.Ceremony:
    keyring = env.keys
    assert isinstance(keyring, Keyring)
    return passkeys.bound_authentication(
        passkeys.RelyingParty.for_issuer(env.issuer), keyring.secret(), ceremony_binding(interaction), env.now()
    )


class PasskeyVerifier:
    """``device_bound``: the method this instance is registered as (``passkey-device`` or ``passkey``) — what
    ``enrolled`` asks about; ``verify`` names whichever the credential proves."""

    def __init__(self, env: Environment, *, device_bound: bool) -> None:
        self.env = env
        self.device_bound = device_bound

    def account(self, form: Mapping[str, str], interaction: Interaction) -> str | None:
        try:
            credential_id = orjson.loads(form.get("credential", "") or "{}").get("id")
        except (orjson.JSONDecodeError, AttributeError):
            return "passkey:malformed"
        return f"passkey:{credential_id[:200]}" if isinstance(credential_id, str) else "passkey:malformed"

    async def verify(self, form: Mapping[str, str], interaction: Interaction) -> Verified | None:
        env = self.env
        keyring = env.keys
        assert isinstance(keyring, Keyring)
        try:
            record = await passkeys.finish_bound_authentication(
                env.store.ephemeral, env.store.accounts, passkeys.RelyingParty.for_issuer(env.issuer),
                list(keyring.secrets()), form.get("credential", ""), bound_to=ceremony_binding(interaction),
                now=env.now(),
            )
        except passkeys.PasskeyError:
            return None
        user = await env.store.users.get(record.username)
        if record.population != authn.POPULATION or user is None or user.disabled or is_removed(user):
            return None
        return Verified(user.username, PASSKEY.name if record.backup_eligible else PASSKEY_DEVICE.name)

    async def enrolled(self, subject: str) -> bool:
        return any(
            a.kind == "passkey" and a.backup_eligible != self.device_bound
            for a in await self.env.store.accounts.list_for(authn.POPULATION, subject)
        )


def verifiers(env: Environment, protector: KeyProtector) -> dict[str, Verifier]:
    """The extra methods, in the order the sign-in page offers them after the password."""
    return {
        PASSKEY_DEVICE.name: PasskeyVerifier(env, device_bound=True),
        PASSKEY.name: PasskeyVerifier(env, device_bound=False),
        TOTP.name: TotpVerifier(env, protector),
    }

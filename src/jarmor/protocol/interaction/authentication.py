"""How a user authenticated, and what a request needs: authentication methods as data.

A ``Method`` says what one way of signing in proves (its RFC 8176 ``amr`` values, the NIST SP 800-63B
factors it covers, whether it is phishing-resistant and hardware-bound) and whether it can identify the user
by itself (a password or a passkey can; a one-time code is a second factor of an identified user). The sign-in
step asks ``next_methods``: which methods, of those the server can verify and the user has, move this
authentication towards what the request needs. What was used is kept as ``Use`` values (method and time), from
which ``amr``, ``auth_time`` and the assurance level reached (``level_of``) follow.

Levels are NIST SP 800-63B authentication assurance levels (§2.2-§2.4 of revision 3, §2 of revision 4):

* AAL1: any single authenticator;
* AAL2: two distinct factors (or one multi-factor authenticator);
* AAL3: AAL2 with a phishing-resistant authenticator whose key cannot be exported (hardware-bound).

The ``acr`` values (``ACR``) name those levels plainly (``aal1``, ``aal2``, ``aal3``; docs/assurance.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum


class Factor(StrEnum):
    """NIST SP 800-63B §4 authentication factors."""

    KNOWLEDGE = "knowledge"  # something you know
    POSSESSION = "possession"  # something you have
    INHERENCE = "inherence"  # something you are


class Level(IntEnum):
    """NIST SP 800-63B authentication assurance levels (``NONE``: not authenticated)."""

    NONE = 0
    AAL1 = 1
    AAL2 = 2
    AAL3 = 3


# acr values (OIDC Core §2) for the levels, and back
ACR: Mapping[Level, str] = {Level.AAL1: "aal1", Level.AAL2: "aal2", Level.AAL3: "aal3"}
LEVEL_OF_ACR: Mapping[str, Level] = {v: k for k, v in ACR.items()}


@dataclass(frozen=True, slots=True)
class Method:
    """One way of signing in, as data; ``name`` is what forms post and interactions store."""

    name: str
    amr: tuple[str, ...]  # RFC 8176 §2 values it contributes
    factors: frozenset[Factor]  # two for a multi-factor authenticator (a passkey with user verification)
    identifies: bool = True  # can start a sign-in (else: a further factor of an identified user)
    phishing_resistant: bool = False  # NIST SP 800-63B §5.2.5: verifier-name or channel binding
    hardware_bound: bool = False  # a non-exportable key (NIST SP 800-63B AAL3)


PASSWORD = Method("password", ("pwd",), frozenset({Factor.KNOWLEDGE}))

# The methods this build knows (the sign-in step offers those the server has a verifier for).
METHODS: dict[str, Method] = {PASSWORD.name: PASSWORD}


def register_method(method: Method) -> None:
    """Make ``method`` known (a module adding a way of signing in calls this once, at import)."""
    METHODS[method.name] = method


@dataclass(frozen=True, slots=True)
class Use:
    """``method`` was verified at ``at`` (epoch seconds)."""

    method: str
    at: int


def level_of(methods: Iterable[Method]) -> Level:
    """The assurance level a set of verified methods reaches (see the module docstring)."""
    used = list(methods)
    if not used:
        return Level.NONE
    factors = frozenset().union(*(m.factors for m in used))
    if len(factors) < 2:
        return Level.AAL1
    if any(m.phishing_resistant and m.hardware_bound for m in used):
        return Level.AAL3
    return Level.AAL2


@dataclass(frozen=True, slots=True)
class Authentication:
    """Who signed in, with which methods and when."""

    subject: str | None = None
    uses: tuple[Use, ...] = ()

    def methods(self) -> list[Method]:
        return [METHODS[u.method] for u in self.uses if u.method in METHODS]

    @property
    def level(self) -> Level:
        return level_of(self.methods())

    @property
    def acr(self) -> str | None:
        return ACR.get(self.level)

    @property
    def amr(self) -> list[str]:
        """RFC 8176 values of every method used, plus ``mfa`` when more than one factor was (§2)."""
        out = list(dict.fromkeys(a for m in self.methods() for a in m.amr))
        if self.level >= Level.AAL2 and "mfa" not in out:
            out.append("mfa")
        return out

    @property
    def auth_time(self) -> int | None:
        """OIDC Core §2 ``auth_time``: when the authentication happened — its oldest factor's time, so that
        ``max_age`` holds every factor to the limit."""
        return min((u.at for u in self.uses), default=None)

    def with_use(self, subject: str, method: str, at: int) -> Authentication:
        """This authentication with ``method`` verified for ``subject`` (another subject starts over)."""
        kept = tuple(u for u in self.uses if u.method != method) if subject == self.subject else ()
        return Authentication(subject, (*kept, Use(method, at)))


@dataclass(frozen=True, slots=True)
class Requirement:
    """What a request needs of the authentication: a level, a maximum age, a fresh sign-in.

    ``max_age`` (OIDC Core §3.1.2.1; a tier's ``authentication.max_age``) bounds how long ago a factor a
    session brings may have been verified; ``fresh`` (``prompt=login``) admits only factors verified during
    this interaction. ``essential``: the level comes from an essential ``acr`` claim (OIDC Core §5.5.1.1),
    whose failure is ``unmet_authentication_requirements``; otherwise the tier or ``acr_values`` asked.
    """

    level: Level = Level.NONE
    max_age: int | None = None
    essential: bool = False
    fresh: bool = False

    def current(self, auth: Authentication, now: int, since: int) -> Authentication:
        """``auth`` without the factors this requirement no longer admits (verified before ``since``, the
        start of the interaction, and too long ago or under ``prompt=login``): what is left to build on."""
        def admitted(use: Use) -> bool:
            if use.at >= since:
                return True
            return not self.fresh and (self.max_age is None or now - use.at <= self.max_age)

        return Authentication(auth.subject, tuple(u for u in auth.uses if admitted(u)))

    def met_by(self, auth: Authentication, now: int, since: int = 0) -> bool:
        """An identified user whose admitted factors reach the level (at least AAL1: someone signed in)."""
        kept = self.current(auth, now, since)
        return kept.subject is not None and bool(kept.uses) and kept.level >= max(self.level, Level.AAL1)


def next_methods(
    auth: Authentication, need: Requirement, available: Sequence[str], enrolled: Iterable[str] | None = None
) -> list[Method]:
    """The methods that move ``auth`` towards ``need``: for an unidentified user, the identifying methods
    from which ``need``'s level can still be reached; for an identified one, the methods of ``enrolled``
    (``None``: every available one) not yet used that raise the level (an identifying method is offered first
    only when it, with the further factors, can reach ``need``'s level). ``available``: the methods the server
    can verify, in the order the sign-in page offers them. Empty: ``need`` cannot be reached."""
    known = [METHODS[n] for n in available if n in METHODS]
    if auth.subject is None:
        # an identifying method is offered when it, with the further factors the server has, can reach the
        # level: a request that needs a hardware-bound passkey is offered that passkey only, not a password
        # it could never complete
        further = [m for m in known if not m.identifies]
        return [m for m in known if m.identifies and level_of([m, *further]) >= need.level]
    have = auth.methods()
    mine = set(enrolled) if enrolled is not None else {m.name for m in known}
    best = level_of([*have, *(m for m in known if m.name in mine)])
    if best < need.level:
        return []
    used = {m.name for m in have}
    current = level_of(have)
    return [m for m in known if m.name in mine and m.name not in used and level_of([*have, m]) > current]

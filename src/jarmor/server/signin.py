"""Sign-in attempt limits (``protocol/interaction/limits.py``), as the administrators' sign-in and the
``jarmor users|admins unlock`` commands import them."""

from ..protocol.interaction.limits import (
    ADMIN_ACCOUNT,
    ADMIN_ACCOUNT_NS,
    ADMIN_ADDRESS,
    ADMIN_ADDRESS_NS,
    ADMIN_MAX_ATTEMPTS,
    ADMIN_MAX_ATTEMPTS_PER_ADDRESS,
    ADMIN_WINDOW,
    MAX_INTERACTION_ATTEMPTS,
    USER_ACCOUNT_NS,
    USER_ADDRESS_NS,
    USER_INTERACTION_NS,
    Attempt,
    AttemptLimit,
    Per,
    UserLimits,
    reserve,
    succeeded,
    unlock_admin,
    unlock_user,
)

__all__ = [
    "ADMIN_ACCOUNT", "ADMIN_ACCOUNT_NS", "ADMIN_ADDRESS", "ADMIN_ADDRESS_NS", "ADMIN_MAX_ATTEMPTS",
    "ADMIN_MAX_ATTEMPTS_PER_ADDRESS", "ADMIN_WINDOW", "MAX_INTERACTION_ATTEMPTS", "USER_ACCOUNT_NS",
    "USER_ADDRESS_NS", "USER_INTERACTION_NS", "Attempt", "AttemptLimit", "Per", "UserLimits", "reserve",
    "succeeded", "unlock_admin", "unlock_user",
]

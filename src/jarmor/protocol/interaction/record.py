"""The stored interaction: a validated request, its state in the machine, and the authentication so far.

Stored in the short-lived store (``interaction`` namespace) under a random id for ``interaction_lifetime``
seconds; ``bind`` ties it to the browser that started it (the adapter's cookie).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ..authorization_state import AuthorizationRequest
from .authentication import Authentication, Use
from .machine import State


@dataclass(slots=True)
class Interaction:
    request: AuthorizationRequest
    bind: str
    state: State = State.SIGNING_IN
    authentication: Authentication = field(default_factory=Authentication)
    started_at: int = 0

    @property
    def subject(self) -> str | None:
        return self.authentication.subject

    def dump(self) -> bytes:
        auth = self.authentication
        return orjson.dumps(
            {
                "request": self.request.to_json().decode(),
                "bind": self.bind,
                "state": self.state.value,
                "subject": auth.subject,
                "uses": [[u.method, u.at] for u in auth.uses],
                "started_at": self.started_at,
            }
        )

    @classmethod
    def load(cls, raw: bytes) -> Interaction:
        data: dict[str, Any] = orjson.loads(raw)
        request = AuthorizationRequest.from_json(data["request"].encode())
        subject = data.get("subject")
        if "uses" in data:
            uses = tuple(Use(str(m), int(t)) for m, t in data["uses"])
        else:  # written before the state machine: a subject means a password sign-in at auth_time
            uses = (Use("password", int(data.get("auth_time") or 0)),) if subject else ()
        state = data.get("state") or (State.CONSENTING if subject else State.SIGNING_IN)
        return cls(
            request=request,
            bind=data["bind"],
            state=State(state),
            authentication=Authentication(subject, uses),
            started_at=int(data.get("started_at") or 0),
        )

"""Search and filters for the dashboard's client list: ``GET /admin/clients?q=&tier=&kind=&owner=&disabled=``.

Plain GET parameters (filtering changes nothing, so no CSRF token), trimmed and bounded, matched against the
inventory (``governance.inventory.ClientSummary``) in memory; the page echoes them back through the
autoescaping template so the form keeps its values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from ...governance.inventory import ClientSummary, InventoryQuery

MAX_PARAM = 200
DISABLED_CHOICES = {"": "Any status", "no": "Active", "yes": "Disabled"}


def _param(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    return "".join(ch for ch in value if ch.isprintable()).strip()[:MAX_PARAM]


@dataclass(frozen=True, slots=True)
class ClientFilter:
    q: str = ""  # case-insensitive substring of the name, client_id, owner or a contact
    tier: str = ""
    kind: str = ""
    owner: str = ""  # exact owner; "-" means clients without an owner
    disabled: str = ""  # "", "yes" (disabled only) or "no" (active only)

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> ClientFilter:
        disabled = _param(params, "disabled").lower()
        return cls(
            q=_param(params, "q"),
            tier=_param(params, "tier"),
            kind=_param(params, "kind"),
            owner=_param(params, "owner"),
            disabled=disabled if disabled in DISABLED_CHOICES else "",
        )

    @property
    def active(self) -> bool:
        return any(asdict(self).values())

    def query(self) -> InventoryQuery:
        """The same filter as the CLI's and the admin API's (``governance.inventory.InventoryQuery``)."""
        return InventoryQuery(
            tier=self.tier or None, kind=self.kind or None, owner=self.owner or None, text=self.q or None,
            disabled=None if not self.disabled else self.disabled == "yes",
        )

    def matches(self, c: ClientSummary) -> bool:
        return self.query().matches(c, now=0)

    def apply(self, clients: Iterable[ClientSummary]) -> list[ClientSummary]:
        return [c for c in clients if self.matches(c)]

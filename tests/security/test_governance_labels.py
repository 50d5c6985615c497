"""Governance labels cannot be changed by self-service (issue 10 item 9).

``risk_tier``, ``client_kind``, ``owner`` and ``resource_server`` decide how a client is governed: its
controls, and whether the report lists it among third-party clients exposed to high-tier scopes. They are set
once at registration — by an administrator, or by rule — and an RFC 7592 update neither changes them nor
lets a rule re-derive them from the updated metadata. Every label the server sets is in the audit log
(who, when, old and new values).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from jarmor.governance.reports import load_report
from jarmor.jose import generate_jwk
from jarmor.protocol.policy import Policy
from jarmor.protocol.registration import register
from tests.kit import REDIRECT, Kit

from .conftest import KitFactory

POLICY = Policy(scope_tiers={"payments": "high"})
INITIAL = {"Authorization": "Bearer initial-token"}
NOT_SENT_IN_UPDATES = (
    "registration_access_token", "registration_client_uri", "client_secret_expires_at", "client_id_issued_at",
    "client_secret",
)


@pytest.fixture
async def pkit(make: KitFactory) -> Kit:
    return await make(policy=POLICY)


def third_party_metadata() -> dict[str, Any]:
    return {
        "client_name": "Vendor App",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [generate_jwk("ES256").public_dict()]},
        "scope": "openid payments",
        "grant_types": ["authorization_code", "refresh_token"],
    }


class Managed:
    """A dynamically registered client driving its own registration (RFC 7592)."""

    def __init__(self, kit: Kit, body: dict[str, Any]) -> None:
        self.kit, self.body = kit, body
        self.client_id = str(body["client_id"])
        self.uri, self.token = str(body["registration_client_uri"]), str(body["registration_access_token"])

    async def put(self, **changes: Any) -> httpx.Response:
        metadata = {k: v for k, v in self.body.items() if k not in NOT_SENT_IN_UPDATES}
        metadata.update(changes)
        r = await self.kit.http.put(self.uri, json=metadata, headers={"Authorization": f"Bearer {self.token}"})
        if r.status_code == 200:
            self.token = r.json()["registration_access_token"]
        return r


async def register_dynamically(kit: Kit, **changes: Any) -> httpx.Response:
    return await kit.http.post("/register", json={**third_party_metadata(), **changes}, headers=INITIAL)


async def exposed(kit: Kit) -> list[str]:
    report = await load_report(kit.store, now=kit.env.now(), policy=POLICY, caps=kit.env.capabilities())
    return [e.client_id for e in report.exposure]


async def test_update_to_machine_metadata_and_back_keeps_the_client_third_party(pkit: Kit) -> None:
    """The issue's sequence: PUT client_credentials-only metadata, then the original metadata back."""
    r = await register_dynamically(pkit)
    assert r.status_code == 201, r.text
    app = Managed(pkit, r.json())
    assert app.body.get("client_kind", "third-party") == "third-party", "derived once, by rule, at registration"
    assert app.client_id in await exposed(pkit)

    r = await app.put(grant_types=["client_credentials"], response_types=[])
    assert r.status_code == 200, r.text
    assert r.json()["client_kind"] == "third-party"
    stored = await pkit.store.clients.get(app.client_id)
    assert stored is not None and stored.metadata["client_kind"] == "third-party"
    assert app.client_id in await exposed(pkit)

    original = {k: v for k, v in app.body.items() if k not in NOT_SENT_IN_UPDATES}
    r = await app.put(**original)
    assert r.status_code == 200, r.text
    assert r.json()["client_kind"] == "third-party"
    assert app.client_id in await exposed(pkit), "still listed among third-party clients with high-tier scopes"


async def test_a_client_registered_before_labels_were_stored_keeps_its_implicit_kind(pkit: Kit) -> None:
    """A stored registration without ``client_kind`` (third-party by default) is not relabelled by an update."""
    r = await register_dynamically(pkit)
    app = Managed(pkit, r.json())
    record = await pkit.store.clients.get(app.client_id)
    assert record is not None
    legacy = {k: v for k, v in record.metadata.items() if k != "client_kind"}
    record.metadata = legacy
    await pkit.store.clients.replace_registration(record, str(record.registration_token_hash))
    app.body = {k: v for k, v in app.body.items() if k != "client_kind"}
    r = await app.put(grant_types=["client_credentials"], response_types=[])
    assert r.status_code == 200, r.text
    stored = await pkit.store.clients.get(app.client_id)
    assert stored is not None and stored.metadata.get("client_kind", "third-party") == "third-party"
    assert app.client_id in await exposed(pkit)


@pytest.mark.parametrize(
    ("name", "value"),
    [("client_kind", "machine"), ("client_kind", "first-party"), ("owner", "someone"), ("risk_tier", "high"),
     ("resource_server", True)],
)
async def test_updates_cannot_change_a_label(pkit: Kit, name: str, value: Any) -> None:
    app = Managed(pkit, (await register_dynamically(pkit)).json())
    r = await app.put(**{name: value})
    assert r.status_code == 400 and r.json()["error"] == "invalid_client_metadata", r.text
    assert "administrator" in r.json()["error_description"]


async def test_dynamic_registration_cannot_choose_its_kind(pkit: Kit) -> None:
    """Self-service registration gets the kind the rule gives it; only an administrator decides otherwise."""
    r = await register_dynamically(pkit, client_kind="first-party")
    assert r.status_code == 400 and r.json()["error"] == "invalid_client_metadata", r.text
    assert "administrator" in r.json()["error_description"]
    r = await register_dynamically(pkit, client_kind="machine")
    assert r.status_code == 400, "the front channel makes it a third-party client by rule"
    r = await register_dynamically(pkit, client_kind="third-party")
    assert r.status_code == 201, "stating what the rule gives is accepted"
    body = await register(pkit.env, {**third_party_metadata(), "client_kind": "first-party"}, actor="admin:root")
    assert body["client_kind"] == "first-party", "an administrator decides"


async def test_registration_records_every_label_in_the_audit_log(pkit: Kit) -> None:
    r = await register_dynamically(pkit, owner="team-vendors")
    client_id = r.json()["client_id"]
    [event] = await pkit.store.audit.list(target=f"client:{client_id}")
    assert event.action == "client.register"
    assert event.details["labels"] == {
        "risk_tier": {"old": None, "new": "baseline"},
        "client_kind": {"old": None, "new": "third-party"},
        "owner": {"old": None, "new": "team-vendors"},
        "resource_server": {"old": None, "new": False},
    }
    assert event.details["client_kind_by"] == "rule"
    body = await register(pkit.env, {**third_party_metadata(), "client_kind": "first-party"}, actor="admin:root")
    [event] = await pkit.store.audit.list(target=f"client:{body['client_id']}")
    assert event.actor == "admin:root" and event.details["client_kind_by"] == "admin:root"
    assert event.details["labels"]["client_kind"] == {"old": None, "new": "first-party"}


async def test_updates_leave_the_labels_and_the_audit_log_says_so(pkit: Kit) -> None:
    app = Managed(pkit, (await register_dynamically(pkit)).json())
    assert (await app.put(grant_types=["client_credentials"], response_types=[])).status_code == 200
    events = await pkit.store.audit.list(target=f"client:{app.client_id}")
    update = next(e for e in events if e.action == "client.update")
    assert "client_kind" not in update.details["changed"]
    assert not any(e.action == "client.labels" for e in events)

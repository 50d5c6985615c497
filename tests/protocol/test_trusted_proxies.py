"""``protocol.addresses.TrustedProxies``: the one answer to "is this peer a trusted proxy?" that the
forwarded-header reader, the server's Client-Cert path and ``jarmor.resource`` share."""

from __future__ import annotations

import pytest

from jarmor.protocol.addresses import TrustedProxies

TRUSTED = TrustedProxies(["10.0.0.0/8", " 192.0.2.7 ", "2001:db8:ff::/48", "172.16.5.9/16"])


@pytest.mark.parametrize("host", ["10.1.2.3", "192.0.2.7", "2001:db8:ff::1", "[2001:db8:ff::1]", "172.16.200.1"])
def test_addresses_in_the_networks_are_trusted(host: str) -> None:
    assert host in TRUSTED
    assert TRUSTED.trusts_peer((host, 443))


@pytest.mark.parametrize("host", ["11.0.0.1", "192.0.2.8", "2001:db8:fe::1", "localhost", "_hidden", "unknown",
                                  "", "10.0.0.1:80", "1" * 65, None, 10])
def test_anything_else_is_not(host: object) -> None:
    assert host not in TRUSTED
    assert not TRUSTED.trusts_peer((host, 443))


def test_a_scope_without_a_client_is_not_a_trusted_peer() -> None:
    assert not TRUSTED.trusts_peer(None) and not TRUSTED.trusts_peer(())
    assert not TrustedProxies([]) and TRUSTED
    assert "10.1.2.3" not in TrustedProxies([])


def test_a_bad_entry_raises() -> None:
    with pytest.raises(ValueError):
        TrustedProxies(["10.0.0.0/33"])

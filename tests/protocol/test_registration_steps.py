"""Registration as an ordered list of small checks (``clients.REGISTRATION_STEPS``), parsing separate from
the tier's controls, each citing the clause it enforces."""

from __future__ import annotations

import inspect
import re

from jarmor.protocol import clients

SPEC = re.compile(r"RFC \d+|JARM|FAPI|OIDC|OAuth|controls")


def names() -> list[str]:
    return [s.__name__ for s in clients.REGISTRATION_STEPS]


def test_every_registration_step_is_small_named_and_cites_its_clause() -> None:
    for step in clients.REGISTRATION_STEPS:
        assert re.fullmatch(r"(load|parse|check)_[a-z_]+", step.__name__), step.__name__
        assert SPEC.search(step.__doc__ or ""), f"{step.__name__} does not cite the clause it enforces"
        assert len(inspect.getsource(step).splitlines()) <= 40, f"{step.__name__} is not small"
    assert len(inspect.getsource(clients.validate_client_metadata).splitlines()) <= 20


def test_the_tier_is_loaded_first_and_its_controls_checked_after_parsing_in_one_step() -> None:
    order = names()
    assert order[0] == "load_risk_tier"
    tier = order.index("check_tier_controls")
    for parsed in ("parse_redirect_uris", "parse_token_endpoint_auth_method", "parse_keys", "parse_request_uris",
                   "parse_encryption", "parse_request_flags", "parse_response_modes"):
        assert order.index(parsed) < tier, parsed
    # only check_tier_controls asks which controls the tier requires; parsing never names a control
    for step in clients.REGISTRATION_STEPS:
        if step is not clients.check_tier_controls:
            assert "Control." not in inspect.getsource(step), step.__name__

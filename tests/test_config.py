"""Strict configuration: an unknown key anywhere or a value of the wrong type or range is refused with a
message naming it (and the nearest valid key); ``jarmor config check`` / ``config show``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jarmor.config import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jarmor.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ('[policy]\ndefault_tier = "high"\n', "'default_tier' (did you mean 'default_client_tier'?)"),
        ('[policy.scope]\npayments = "high"\n', "'scope' (did you mean 'scopes'?)"),
        ('[polcy]\ndefault_client_tier = "high"\n', "'polcy' (did you mean 'policy'?)"),
        ('[settings]\nfuture_skew = "10"\n', "future_skew must be int"),
        ("[settings]\nfuture_skew = -5\n", "future_skew must be at least 0"),
        ("[settings]\nflow_record_batch = 0\n", "flow_record_batch must be at least 1"),
        ("[settings]\nflow_records = 1\n", "flow_records must be bool"),
        ("[settings]\nenrolment_link_lifetime = 299\n", "enrolment_link_lifetime must be between 300 and 604800"),
        ("[settings]\nenrolment_link_lifetime = 604801\n", "enrolment_link_lifetime must be between 300 and 604800"),
        ('[settings]\nenrolment_link_lifetime = "1d"\n', "enrolment_link_lifetime must be int"),
        ("[settings]\nenrolment_link_lifetme = 600\n", "(did you mean 'enrolment_link_lifetime'?)"),
        ('[settings]\nscopes = "openid"\n', "scopes must be"),
        ("[settings]\nfuture_skw = 5\n", "'future_skw' (did you mean 'future_skew'?)"),
        ("[settings]\nfetch_timeout = nan\n", "fetch_timeout must be float"),
        ('[server]\nport = "8000"\n', "port must be an integer"),
        ("[server]\nport = 99999\n", "port must be between 1 and 65535"),
        ("[server]\nprot = 8000\n", "'prot' (did you mean 'port'?)"),
        ('[server]\ntrusted_proxies = ["10.0.0.0/8", "nope"]\n', "'nope' is not an IP address or network"),
        ('[server]\nforwarded_header = "Forwarded"\n', "forwarded_header must be x-forwarded-for or forwarded"),
        ("[policy.tiers.high]\ncode_lifetime = \"30\"\n", "code_lifetime must be int"),
        ("[policy.tiers.high]\ncode_lifetime = 0\n", "code_lifetime must be at least 1"),
        ("[policy.tiers.high]\ncode_lifetim = 30\n", "(did you mean 'code_lifetime'?)"),
        ('[policy.tiers.high]\ncontrols = ["pkce_s256", "parr"]\n', "unknown control 'parr' (did you mean 'par'?)"),
        ('[policy.tiers.high]\nsigning_algs = ["ES265"]\n', "unsupported signing algorithm 'ES265'"),
        ('[policy.scopes]\npayments = "hihg"\n', "unknown tier 'hihg' (did you mean 'high'?)"),
        ('[policy]\ndefault_client_tier = "elevatd"\n', "(did you mean 'elevated'?)"),
        ("[policy]\ntiers = 3\n", "each tier must be a table"),
        ("settings = 3\n", "[settings] must be a table"),
    ],
)
def test_bad_configuration_is_refused_naming_the_key(tmp_path: Path, toml: str, named: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, toml), environ={})
    assert named in str(exc.value)


def test_flags_and_environment_are_checked_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="port must be between 1 and 65535"):
        load_config(None, {"port": 99999}, environ={})
    with pytest.raises(ConfigError, match="port: expected int"):
        load_config(None, environ={"JARMOR_PORT": "eighty"})


def test_a_valid_file_loads_typed_values(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, (
        '[server]\nissuer = "https://as.example.com"\ntrusted_proxies = ["10.0.0.0/8"]\n'
        '[settings]\nfuture_skew = 5\nfetch_timeout = 3\nscopes = ["openid", "payments"]\n'
        '[policy.scopes]\npayments = "high"\n[policy.tiers.high]\ncode_lifetime = 30\n'
    )), environ={})
    assert config.settings.future_skew == 5 and config.settings.fetch_timeout == 3
    assert config.settings.scopes == frozenset({"openid", "payments"})
    assert config.policy.tiers["high"].code_lifetime == 30 and config.policy.scope_tiers == {"payments": "high"}
    assert config.trusted_proxies == ("10.0.0.0/8",)


def jarmor(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "jarmor.cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env={**{k: v for k, v in os.environ.items() if not k.startswith("JARMOR_")},
                                           **(env or {})})


def test_config_check(tmp_path: Path) -> None:
    good = write(tmp_path, '[settings]\nfuture_skew = 5\n')
    out = jarmor("config", "check", str(good), cwd=tmp_path)
    assert out.returncode == 0 and "valid" in out.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[policy]\ndefault_tier = "high"\n')
    out = jarmor("config", "check", str(bad), cwd=tmp_path)
    assert out.returncode == 1 and "default_tier" in out.stderr and "default_client_tier" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_config_show_names_sources_and_hides_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, (
        '[server]\nregistration_token = "s3cret-token"\ndatabase = "postgresql+psycopg://u:pw-123@db/x"\n'
        '[settings]\nmetrics_token = "m3trics"\nfuture_skew = 5\n'
    ))
    out = jarmor("config", "show", "--config", str(path), "--port", "9000", "--format", "json", cwd=tmp_path,
                 env={"JARMOR_WORKERS": "3"})
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["server.port"] == {"value": 9000, "source": "flag"}
    assert shown["server.workers"]["source"].startswith("environment") and shown["server.workers"]["value"] == 3
    assert shown["server.registration_token"] == {"value": "(set, hidden)", "source": "file [server]"}
    assert shown["settings.future_skew"] == {"value": 5, "source": "file [settings]"}
    assert shown["settings.jarm_lifetime"]["source"] == "default"
    assert "pw-123" not in out.stdout and "s3cret-token" not in out.stdout and "m3trics" not in out.stdout
    text = jarmor("config", "show", "--config", str(path), cwd=tmp_path)
    assert text.returncode == 0 and "settings.future_skew" in text.stdout and "(file [settings])" in text.stdout


# -- one list of options: flags, variables and [server] keys all come from ``ServerConfig`` --------------------


def test_flags_variables_and_file_keys_come_from_the_one_model(tmp_path: Path) -> None:
    from dataclasses import fields

    from jarmor.cli.main import build_parser
    from jarmor.config import OPTIONS, ServerConfig, read_config, to_environment

    assert [f.name for f in fields(ServerConfig) if f.name not in ("policy", "settings")] == list(OPTIONS)
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    flags = {a.dest for a in serve._actions if a.option_strings and a.dest != "help"}
    assert flags == set(OPTIONS)
    # every option, by flag, by variable and in the file, lands in the same field with the same value
    given = {"issuer": "http://127.0.0.1:9000", "host": "::1", "port": "9000", "database": "sqlite:///x.db",
             "redis": "redis://r/0", "registration_token": "t0ken", "auto_approve": "alice", "workers": "3",
             "metrics_port": "9100", "trusted_proxies": "10.0.0.0/8,192.0.2.1", "log_format": "json",
             "log_level": "info"}
    by_flag = read_config(None, given, environ={})
    by_env = read_config(None, environ={OPTIONS[k].env: v for k, v in given.items()})
    toml = "[server]\n" + "".join(
        f"{k} = {v}\n" if OPTIONS[k].kind is int else
        f"{k} = {json.dumps(v.split(','))}\n" if OPTIONS[k].kind is tuple else f"{k} = {json.dumps(v)}\n"
        for k, v in given.items()
    )
    by_file = read_config(write(tmp_path, toml), environ={})
    assert by_flag.config == by_env.config == replace_config(by_file.config)
    assert set(by_flag.sources.values()) == {"flag", "default"} and by_file.sources["port"] == "file [server]"
    assert by_env.sources["workers"] == "environment (JARMOR_WORKERS)"
    # what ``jarmor serve`` hands its workers rebuilds the same configuration
    assert read_config(None, environ=to_environment(by_flag.config)).config == by_flag.config


def replace_config(config: object) -> object:
    """The file's configuration without the file's own path (flags and variables above name no file)."""
    from dataclasses import replace

    return replace(config, config=None)  # type: ignore[type-var]


@pytest.mark.parametrize(("flag", "value", "named"), [
    ("--port", "99999", "port must be between 1 and 65535"),
    ("--port", "0", "port must be between 1 and 65535"),
    ("--workers", "0", "workers must be at least 1"),
    ("--metrics-port", "70000", "metrics_port must be between 1 and 65535"),
    ("--trusted-proxies", "10.0.0.0/8,nope", "'nope' is not an IP address or network"),
])
def test_out_of_range_flags_are_refused_before_anything_starts(tmp_path: Path, flag: str, value: str,
                                                               named: str) -> None:
    out = jarmor("serve", flag, value, cwd=tmp_path)
    assert out.returncode == 2 and named in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert out.stdout == "" and not (tmp_path / "jarmor.db").exists()


def test_the_configuration_file_can_be_named_by_jarmor_config(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 9001\n")
    out = jarmor("config", "show", "--format", "json", cwd=tmp_path, env={"JARMOR_CONFIG": str(path)})
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["server.port"] == {"value": 9001, "source": "file [server]"}
    assert shown["server.config"]["source"] == "environment (JARMOR_CONFIG)"
    assert shown["environment.key_encryption_key"] == {"value": None, "source": "default"}
    out = jarmor("config", "show", "--format", "json", cwd=tmp_path, env={"JARMOR_KEY_ENCRYPTION_KEY": "k3y"})
    hidden = json.loads(out.stdout)["environment.key_encryption_key"]
    assert hidden == {"value": "(set, hidden)", "source": "environment (JARMOR_KEY_ENCRYPTION_KEY)"}
    assert "k3y" not in out.stdout


def test_no_module_reads_a_jarmor_variable_by_itself() -> None:
    """``config.py`` declares every ``JARMOR_*`` variable and reads them (``from_environment``); a module that
    reads ``os.environ["JARMOR_..."]`` itself would be an option outside the one list."""
    import ast

    src = Path(__file__).resolve().parents[1] / "src" / "jarmor"
    found = []
    for path in sorted(src.rglob("*.py")):
        if path.name == "config.py" and path.parent == src:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            target = node.func if isinstance(node, ast.Call) else node.value if isinstance(node, ast.Subscript) else None
            if target is None or ("environ" not in ast.unparse(target) and "getenv" not in ast.unparse(target)):
                continue
            if "JARMOR_" in ast.unparse(node):
                found.append(f"{path.relative_to(src)}:{node.lineno}")
    assert found == []
    # the checker sees such a read
    sample = ast.parse('os.environ.get("JARMOR_X")')
    assert any(isinstance(n, ast.Call) and "JARMOR_" in ast.unparse(n) for n in ast.walk(sample))

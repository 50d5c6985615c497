"""Every command of ``jarmor``, run with bad input, ends with one line on standard error and a non-zero exit
code — never a traceback.

The commands are enumerated from the argument parser itself, so a command added later is covered without
touching this file. Each runs in its own process, as a user would run it, with:

* a configuration file that does not exist;
* a database path that cannot hold a database (under a regular file);
* bogus values for its positional arguments and required options, against a valid, empty database;
* an option it does not have.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from jarmor.cli.main import build_parser, main

BOGUS = "no-such-thing"
UNREACHABLE = "http://127.0.0.1:1"  # nothing listens on port 1


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:  # type: ignore[type-arg]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    sub = _subparsers(parser)
    if sub is not None:
        for name, child in sub.choices.items():
            yield from walk(child, (*path, name))


def _is_group(parser: argparse.ArgumentParser) -> bool:
    """A command group only prints its usage (``jarmor keys``)."""
    return getattr(parser.get_default("func"), "__name__", "") == "usage"


COMMANDS = [(path, p) for path, p in walk(build_parser()) if path and not _is_group(p)]


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


def _bogus_arguments(parser: argparse.ArgumentParser) -> list[str]:
    """Bogus values for the positionals (not the sub-command choice) and every required option."""
    args: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        if not action.option_strings:
            args += [BOGUS] * (action.nargs if isinstance(action.nargs, int) else 1)
        elif action.required:
            args += [action.option_strings[-1], BOGUS]
    return args


def _has_inputs(parser: argparse.ArgumentParser) -> bool:
    return any(
        not isinstance(a, argparse._SubParsersAction) and (not a.option_strings or a.required) for a in parser._actions
    )


def variants(path: tuple[str, ...], parser: argparse.ArgumentParser, tmp: Path, db: str) -> list[list[str]]:
    options = _options(parser)
    extra = ["--issuer", UNREACHABLE] if "--issuer" in options else []
    bogus = _bogus_arguments(parser)
    runs = []
    if "--config" in options:
        runs.append([*path, *bogus, *extra, "--config", str(tmp / "missing.toml")])
    if "--database" in options:
        runs.append([*path, *bogus, *extra, "--database", f"sqlite:///{tmp / 'a-file' / 'jarmor.db'}"])
        if _has_inputs(parser) or path == ("demo",):  # the demo's input is the server it drives
            runs.append([*path, *bogus, *extra, "--database", db])
    return runs


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jarmor.cli.main", *args],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, cwd=cwd,
        env={**os.environ, "JARMOR_DEBUG": ""},
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("bad-input")
    (tmp / "a-file").write_text("not a directory\n")
    db = f"sqlite:///{tmp / 'valid.db'}"
    out = run(["db", "upgrade", "--database", db], tmp)
    assert out.returncode == 0, out.stderr
    return tmp, db


def test_every_command_refuses_an_unknown_option_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    for path, parser in COMMANDS:
        code = main([*path, *_bogus_arguments(parser), "--no-such-option"])
        err = capsys.readouterr().err
        assert code == 2 and len(err.splitlines()) == 1 and "--no-such-option" in err, (path, err)


def test_every_command_is_enumerated() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"serve", "demo", "users add", "users remove", "admins unlock", "keys rotate", "flows verify",
            "review revoke", "policy check", "db upgrade", "clients add"} <= names


def test_every_command_with_bad_input_fails_in_one_line(workdir: tuple[Path, str]) -> None:
    tmp, db = workdir
    runs = [args for path, parser in COMMANDS for args in variants(path, parser, tmp, db)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda args: (args, run(args, tmp)), runs))
    problems = []
    for args, out in results:
        lines = out.stderr.splitlines()
        if out.returncode == 0 or len(lines) != 1 or "Traceback" in out.stderr + out.stdout:
            problems.append(f"jarmor {' '.join(args)} -> exit {out.returncode}\n{out.stderr}{out.stdout[-500:]}")
    assert not problems, f"{len(problems)} of {len(runs)} runs:\n" + "\n".join(problems)
    assert not (tmp / "missing.toml").exists()


GROUPS = [path for path, p in walk(build_parser()) if _is_group(p)]


def test_a_group_without_command_prints_its_usage(tmp_path: Path) -> None:
    assert ("keys",) in GROUPS and () in GROUPS
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda path: (path, run(list(path), tmp_path)), GROUPS))
    for path, out in results:
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
        assert out.stderr.startswith(" ".join(("usage: jarmor", *path))), out.stderr

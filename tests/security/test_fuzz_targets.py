"""The fuzz targets (fuzz/) in CI, bounded: every seed of the committed corpus replays cleanly and Hypothesis
feeds each target random bytes (about 2 s in all). Set ``JARMOR_FUZZ_RUNS=N`` (inputs) or
``JARMOR_FUZZ_SECONDS=S`` to also run each target under libFuzzer (atheris); instrumenting the imports
costs several seconds per target, so that pass is opt-in.

Long campaigns are ``fuzz/run.sh SECONDS``; their figures are in docs/security.md.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
FUZZ = ROOT / "fuzz"
TARGETS = ["jose", "request_object", "jarm", "params", "metadata"]


def target(name: str) -> ModuleType:
    if str(FUZZ) not in sys.path:
        sys.path.insert(0, str(FUZZ))
    importlib.import_module("harness").ensure_seed_corpus()
    return importlib.import_module(f"fuzz_{name}")


@pytest.mark.parametrize("name", TARGETS)
def test_corpus_replays_cleanly(name: str) -> None:
    module = target(name)
    seeds = sorted((FUZZ / "corpus" / name).iterdir())
    assert seeds, f"no seed corpus for {name}"
    for seed in seeds:
        module.test_one_input(seed.read_bytes())


@pytest.mark.parametrize("name", TARGETS)
@given(data=st.binary(max_size=512))
def test_targets_accept_random_bytes(name: str, data: bytes) -> None:
    target(name).test_one_input(data)


@pytest.mark.parametrize("name", TARGETS)
def test_targets_under_libfuzzer(name: str, tmp_path: Path) -> None:
    seconds, runs = os.environ.get("JARMOR_FUZZ_SECONDS"), os.environ.get("JARMOR_FUZZ_RUNS")
    if not (seconds or runs):
        pytest.skip("libFuzzer pass is opt-in: set JARMOR_FUZZ_RUNS or JARMOR_FUZZ_SECONDS (corpus replay ran)")
    if importlib.util.find_spec("atheris") is None:
        pytest.skip("atheris is not installed (pip install atheris): corpus replay and Hypothesis still ran")
    budget = [f"-max_total_time={seconds}"] if seconds else [f"-runs={runs}"]
    work = tmp_path / "corpus"
    work.mkdir()
    proc = subprocess.run(
        [sys.executable, str(FUZZ / f"fuzz_{name}.py"), str(work), str(FUZZ / "corpus" / name), *budget,
         "-timeout=10", "-rss_limit_mb=2048", "-max_len=16384", f"-artifact_prefix={tmp_path}/"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done" in proc.stderr or "DONE" in proc.stderr, proc.stderr[-1000:]

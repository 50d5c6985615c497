"""Text output is inert: stored values cannot drive the terminal or forge table rows (issue 10 item 5)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from jarmor.governance import render
from jarmor.governance.terminal import safe, scrub, table

HOSTILE = [
    "\x1b]0;owned\x07",  # OSC: set the window title, BEL-terminated
    "\x1b[2J\x1b[H",  # clear the screen
    "\x9b31m",  # C1 CSI
    "\x7f",  # DEL
    "a\nforged  row",
    "a\rb",
    "a\u2028b\u2029c",
    "\u202egnp.exe",  # right-to-left override
    "\u2066isolate\u2069",
    "zero\u200bwidth",
    "\ud800",  # a lone surrogate cannot even be printed
]


@pytest.mark.parametrize("value", HOSTILE)
def test_safe_leaves_no_control_character(value: str) -> None:
    shown = safe(value)
    assert shown.isprintable() and shown.encode("utf-8")
    assert "\\" in shown  # visibly escaped, not dropped


def test_printable_text_is_unchanged() -> None:
    for text in ("Vendor Portal", "Bücher GmbH", "東京", "emoji 🙂", "a  b", ""):
        assert safe(text) == text


def test_table_keeps_one_line_per_row() -> None:
    rows = [("NAME", "OWNER")] + [(v, v) for v in HOSTILE]
    text = table(rows)
    assert len(text.splitlines()) == len(rows)
    assert all(line.isprintable() for line in text.splitlines())
    assert render.table(rows) == text  # governance's text renderers use the same table


def test_scrub_reaches_into_nested_records() -> None:
    @dataclass(frozen=True, slots=True)
    class Inner:
        name: str
        tags: tuple[str, ...]

    @dataclass(frozen=True, slots=True)
    class Outer:
        items: list[Inner]
        by: dict[str, int]
        count: int

    value = Outer([Inner("x\x1b[31m", ("a\nb",))], {"k\x07": 1}, 3)
    clean = scrub(value)
    assert clean.items[0].name == "x\\x1b[31m" and clean.items[0].tags == ("a\\nb",)
    assert clean.by == {"k\\x07": 1} and clean.count == 3
    assert value.items[0].name == "x\x1b[31m"  # the original is untouched

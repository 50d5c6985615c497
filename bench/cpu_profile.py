"""Run a jarmor command under a CPU-time sampler: which Python frames the process's CPU time is spent in.

    python bench/cpu_profile.py --out profile.collapsed [--interval-ms 1] -- serve --auto-approve alice ...
    kill -USR1 PID   # start sampling (after the warm-up; or pass --now)
    kill -USR2 PID   # stop sampling and write the stacks (also written at exit)

``SIGPROF`` fires every ``interval`` of CPU time the process consumes (user + system, ``ITIMER_PROF``), and
the handler counts the main thread's Python stack. Unlike a wall-clock sampler (py-spy counts every moment
a thread is not idle, including time a syscall spends waiting), each sample here stands for the same amount
of CPU, so shares multiply directly into ms per flow. A C call (a ``send`` syscall, ``sqlite3`` executing a
statement, an ECDSA verification) is counted in the Python frame that called it. The stacks are written, when
the command exits (``SIGINT``/``SIGTERM`` stop uvicorn gracefully), in py-spy's collapsed format, so
``python bench/profile_server.py analyze`` reads both.

Only for ``jarmor serve --workers 1``: uvicorn then serves from this process's main thread.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import signal
import sys
from pathlib import Path
from types import FrameType


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--interval-ms", type=float, default=1.0)
    p.add_argument("--now", action="store_true", help="sample from the start (default: from SIGUSR1)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="-- then the jarmor command line")
    opt = p.parse_args()
    args = opt.args[1:] if opt.args[:1] == ["--"] else opt.args

    stacks: collections.Counter[tuple[str, ...]] = collections.Counter()
    names: dict[object, str] = {}

    def label(frame: FrameType) -> str:
        code = frame.f_code
        name = names.get(code)
        if name is None:
            name = names[code] = f"{code.co_qualname} ({code.co_filename}:{code.co_firstlineno})"
        return name

    def on_sigprof(_sig: int, frame: FrameType | None) -> None:
        stack = []
        while frame is not None:
            stack.append(label(frame))
            frame = frame.f_back
        stacks[tuple(reversed(stack))] += 1

    interval = opt.interval_ms / 1000
    dumped = [False]

    def start(*_: object) -> None:
        stacks.clear()
        dumped[0] = False
        signal.setitimer(signal.ITIMER_PROF, interval, interval)

    def dump(*_: object) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        if dumped[0]:
            return
        dumped[0] = True
        with opt.out.open("w") as f:
            for stack, n in stacks.items():
                if stack:
                    f.write(f"{';'.join(stack)} {n}\n")
        total = sum(stacks.values())
        print(f"cpu_profile: {total} samples ({total * opt.interval_ms / 1000:.1f} s CPU) -> {opt.out}",
              file=sys.stderr)

    atexit.register(dump)
    signal.signal(signal.SIGPROF, on_sigprof)
    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, dump)
    if opt.now:
        start()
    from jarmor.cli.main import main as jarmor_main

    try:
        return jarmor_main(args)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())

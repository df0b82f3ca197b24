"""Progress of long work: a tqdm bar on a terminal, one plain line per step otherwise.

``Progress(total, "evaluate")`` counts steps; ``step(label)`` announces the step about to
run and ``done()`` counts it. When the stream is a TTY a tqdm bar shows the count and the
current step; otherwise each announced step prints one timestamped line, so a log file shows
where a long run is (and a captured run is not silent).
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any


class Progress:
    """Counts ``total`` steps on ``stream`` (stderr by default)."""

    def __init__(self, total: int, desc: str, stream: IO[str] | None = None,
                 tty: bool | None = None):
        self.total, self.desc, self.count = total, desc, 0
        self.stream = stream if stream is not None else sys.stderr
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty and isatty())
        self.bar: Any = None
        if tty:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, file=self.stream, leave=True)
        self.start = time.perf_counter()

    def step(self, label: str) -> None:
        """Announce the step about to run."""
        if self.bar is not None:
            self.bar.set_postfix_str(label)
            return
        elapsed = time.perf_counter() - self.start
        print(f"{time.strftime('%H:%M:%S')} {self.desc} [{self.count + 1}/{self.total}] "
              f"{label} ({elapsed:.0f} s elapsed)", file=self.stream, flush=True)

    def done(self) -> None:
        """Count the announced step as finished."""
        self.count += 1
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            elapsed = time.perf_counter() - self.start
            print(f"{time.strftime('%H:%M:%S')} {self.desc} finished {self.count}/{self.total} "
                  f"steps in {elapsed:.0f} s", file=self.stream, flush=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

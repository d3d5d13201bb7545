"""How the library tells a person what it is doing: one :class:`Reporter`, handed to whatever takes
long. Notices (a line a person should read) and progress (bars, epoch lines) go to stderr, never to
stdout, which belongs to the data a command prints (tables, ``--json``)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TextIO

from tqdm.auto import tqdm


class Reporter:
    """Notices always; progress bars and step lines only when ``progress`` is on (``--quiet`` turns
    it off). ``stream`` defaults to stderr at the time of writing (so tests capturing it see it)."""

    def __init__(self, progress: bool = True, stream: TextIO | None = None):
        self.progress = progress
        self._stream = stream

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr

    def notice(self, message: str) -> None:
        """A line worth reading whatever the verbosity: a fallback taken, files skipped, where output went."""
        print(message, file=self.stream, flush=True)

    def step(self, message: str) -> None:
        """A progress line (an epoch's loss, a stage started), shown only with progress on."""
        if self.progress:
            print(message, file=self.stream, flush=True)

    def bar(self, iterable: Iterable | None = None, total: int | None = None, desc: str = "", unit: str = "it"):
        """A progress bar (tqdm) on the stream; disabled, it still iterates and counts."""
        return tqdm(iterable, total=total, desc=desc, unit=unit, file=self.stream, disable=not self.progress,
                    dynamic_ncols=True)


QUIET = Reporter(progress=False)  # the library's default: notices only, no bars

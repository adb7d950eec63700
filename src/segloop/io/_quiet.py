"""Keep third-party chatter off the user's terminal while reading files.

nibabel and tifffile log warnings about odd headers, and ITK prints its own
warnings from C++; segloop reports problems through its errors and image
metadata instead, so the command line prints one line per error.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

__all__ = ["captured_logs", "itk_quiet", "stderr_captured"]


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(" ".join(record.getMessage().split()))


@contextlib.contextmanager
def captured_logs(*names: str) -> Iterator[list[str]]:
    """Collect (instead of printing) warnings logged by the named loggers.

    Examples
    --------
    >>> import logging
    >>> with captured_logs("demo.lib") as notes:
    ...     logging.getLogger("demo.lib").warning("odd header")
    >>> notes
    ['odd header']
    """
    collector = _Collector()
    saved = []
    for name in names:
        logger = logging.getLogger(name)
        saved.append((logger, logger.propagate, list(logger.handlers)))
        logger.handlers = [collector]
        logger.propagate = False
    try:
        yield collector.messages
    finally:
        for logger, propagate, handlers in saved:
            logger.handlers = handlers
            logger.propagate = propagate


@contextlib.contextmanager
def itk_quiet() -> Iterator[None]:
    """Silence ITK's global warning printout (errors still raise)."""
    import SimpleITK as sitk

    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(previous)


@contextlib.contextmanager
def stderr_captured() -> Iterator[list[str]]:
    """Capture what C/C++ code writes straight to file descriptor 2.

    Some ITK readers (MetaIO) print to ``std::cerr`` before raising; the text
    is collected into the yielded list instead of reaching the terminal.
    """
    import os
    import sys
    import tempfile

    lines: list[str] = []
    fd = 2  # C++ writes to descriptor 2 whatever Python's sys.stderr points to
    try:
        saved = os.dup(fd)
    except OSError:  # no descriptor 2 (daemon without stderr): nothing to capture
        yield lines
        return
    with contextlib.suppress(AttributeError, OSError, ValueError):
        sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield lines
        finally:
            with contextlib.suppress(AttributeError, OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            lines.extend(" ".join(ln.split()) for ln in text.splitlines() if ln.strip())

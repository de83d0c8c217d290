"""Running ``medslip`` in-process in tests and checking how it refuses bad input."""

from __future__ import annotations

import logging

from medslip.cli import main


def fails(argv: list, caplog, *names: object) -> str:
    """Run ``medslip argv``; exit code 2 and a one-line error (no traceback) naming every
    ``names``; returns the error line."""
    caplog.clear()
    assert main([str(a) for a in argv]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and "\n" not in errors[-1] and "Traceback" not in caplog.text, caplog.text
    for name in names:
        assert str(name) in errors[-1], (name, errors[-1])
    return errors[-1]

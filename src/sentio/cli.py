"""What every command-line script shares: logging set-up and one-line errors for bad input."""

from __future__ import annotations

import logging
import sys
from typing import Callable

# Errors caused by the user's input or environment: print one line, never a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, OSError, KeyError)


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=level, stream=sys.stderr)
    for noisy in ("datasets", "httpx", "urllib3", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_cli(main: Callable[[], int | None], prog: str) -> None:
    """Run `main`; a user error exits 2 with `prog: error: <one line>`, Ctrl-C exits 130."""
    setup_logging()
    try:
        code = main()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    except USER_ERRORS as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code or 0)

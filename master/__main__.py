"""``python -m master``: run a master (flags as for ``emporion master``; see ``--help``)."""

from __future__ import annotations

import os
import sys

from master.config import ConfigError, config_from_args
from master.runtime import run


def main(argv: list[str] | None = None) -> int:
    """Parse flags and ``EMPORION_*`` variables, then run the master; the exit status."""
    try:
        config = config_from_args(sys.argv[1:] if argv is None else argv, os.environ)
    except ConfigError as error:
        print(f"python -m master: {error}", file=sys.stderr)
        return 2
    return run(config)


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m emporion`` runs the command line."""

from emporion.cli import main

raise SystemExit(main())

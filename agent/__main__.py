"""``python -m agent``: run an Emporion agent (see ``agent.runtime.main``)."""

from agent.runtime.main import main

raise SystemExit(main())

"""The Mesos version this master claims to Mesos clients, and why.

Mesos clients decide what to use from the master's version: pymesos reads ``GET /version``,
parses ``version`` as dotted integers and, below 1.0.0, treats the master as pre-1.0 Mesos (it
drops the GPU_RESOURCES capability and reads inverse offers out of OFFERS events). Emporion
serves the v1 scheduler API and the messages of Mesos 1.11.0, the last release
(``protos/v1/*.proto`` mirror it), so that is what it claims. Its own version is given beside
it, under another name. ``docs/mesos-compatibility.md`` lists what the claim covers.
"""

from __future__ import annotations

__all__ = ["MESOS_VERSION"]

MESOS_VERSION = "1.11.0"
"""The Mesos release whose v1 API this master serves (plain dotted integers: pymesos parses
them with ``int``)."""

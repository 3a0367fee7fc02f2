"""The launch helper's entry point: the one file the agent runs by path.

``python -I -S init.py --fork-server`` (a socket on fd 3) is the agent's fork server
(:mod:`agent.isolation.helper.forkserver`); ``--launch-one`` serves one launch request by
becoming its helper (the fallback where the server cannot clone); ``--probe-namespaces``
checks once per agent that PID and mount namespaces work here.

Why a separate process at all: the agent runs gRPC threads, so it never forks-and-configures
in its own process (``preexec_fn`` is unsafe with threads); it ``posix_spawn``\\ s this file
with a fresh, single-threaded interpreter in isolated mode (no site-packages, no environment,
no current directory on ``sys.path``). Run by path, it makes ``agent.isolation.helper``
importable itself, without running ``agent/isolation/__init__.py``: that would load the
agent's side of the package (cgroup drivers, container handles) into the fork server, twice
its memory and three times the cost of each clone (1.3 ms instead of 0.4 ms until the child
runs, measured on the 2-core VM). Everything the helper imports is standard library
(``tests/unit/isolation/test_api.py`` checks it). See docs/isolation.md.
"""

from __future__ import annotations

import os
import sys
import types

if __name__ == "__main__" and not __package__:
    _here = os.path.dirname(os.path.realpath(__file__))  # os.path: pathlib costs 1 MB here
    _agent = os.path.dirname(_here)
    sys.path.insert(0, os.path.dirname(_agent))
    for _name, _path in (("agent", _agent), ("agent.isolation", _here)):
        _package = types.ModuleType(_name)
        _package.__path__ = [_path]  # Bare packages: their __init__ modules never run.
        sys.modules[_name] = _package

from agent.isolation.helper import forkserver, mounts

USAGE = "usage: init.py --fork-server | --launch-one | --probe-namespaces"
SERVER_FD = 3


def main(argv: list[str]) -> int:
    if argv == ["--probe-namespaces"]:
        return mounts.probe_namespaces()
    if argv in (["--fork-server"], ["--launch-one"]):
        # Nothing of the agent leaks into the server or the helpers it clones.
        os.closerange(SERVER_FD + 1, os.sysconf("SC_OPEN_MAX"))
        return forkserver.serve(SERVER_FD, clone=argv == ["--fork-server"])
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

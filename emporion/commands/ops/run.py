"""``emporion run [flags] -- CMD ARGS...``: run a command on the cluster as a task (or N).

Like Mesos's ``mesos-execute``, ``nomad job run`` or ``kubectl run``, without writing a
framework: the command is run as it is (no shell; write ``sh -c '...'`` for one), its stdout and
stderr stream to this terminal as it runs (read through the master, the only machine this one
needs to reach), and ``emporion run`` exits with the command's exit status. A task that fails,
is lost or is refused prints its state, reason and message. Ctrl-C kills the task(s), tears the
framework down and exits 130. See :mod:`emporion.commands.ops.runner` for how.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import uuid
from pathlib import PurePath
from typing import Any

from emporion.commands.ops.common import Session, add_command
from emporion.commands.ops.runner import Output, Runner, RunSpec
from protos.resources import Resources

__all__ = ["register", "spec_from_args"]

DESCRIPTION = """\
Run a command on the cluster as a task (or N), without writing a framework. The command runs as
it is, without a shell (write sh -c '...' for one); its stdout and stderr stream here as it runs,
read through the master, the only machine this one needs to reach; emporion run exits with the
command's exit status. A task that fails, is lost or is refused prints its state, reason and
message. Ctrl-C kills the task(s), tears the framework down and exits 130."""

EPILOG = """\
examples:
  emporion run -- sh -c 'echo hello from $(hostname)'
  emporion run --cpus 2 --mem 1024 --env MODE=fast --uri https://example.com/tool.tgz -- ./tool
  emporion run --instances 4 --name sweep -- sh -c 'echo I am $MESOS_TASK_ID'

exit status: the command's own (128+N when killed by signal N); 1 when the task was lost,
refused or killed by the cluster; of several instances the first that did not succeed; 2 for
bad flags or an unreachable master; 130 after Ctrl-C."""


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _count(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _variable(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or "\0" in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def spec_from_args(ns: argparse.Namespace) -> RunSpec:
    """The RunSpec of parsed ``run`` arguments; ValueError naming the flag that is wrong."""
    argv = list(ns.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise ValueError("no command given: emporion run [flags] -- CMD ARGS...")
    amounts = {"cpus": ns.cpus, "mem": ns.mem, "disk": ns.disk, "gpus": ns.gpus}
    if not ns.cpus and not ns.mem:
        raise ValueError("--cpus and --mem cannot both be 0: a task needs one of them")
    text = ";".join(f"{name}:{value:g}" for name, value in amounts.items() if value)
    name = ns.name or "emporion-run"
    base = ns.name or PurePath(argv[0]).name or "task"
    prefix = f"{base}-{uuid.uuid4().hex[:8]}"
    return RunSpec(
        argv=tuple(argv),
        resources=Resources.parse(text),
        name=name,
        task_prefix=prefix,
        instances=ns.instances,
        role=ns.role,
        env=tuple(ns.env),
        uris=tuple(ns.uri),
    )


def _check(ns: argparse.Namespace) -> None:
    ns.spec = spec_from_args(ns)


def cmd_run(ns: argparse.Namespace, session: Session) -> int:
    """Run the command; the exit status of the task(s)."""
    spec: RunSpec = ns.spec
    output = Output(prefix=spec.instances > 1, as_json=ns.json)
    interactive = sys.stderr.isatty() and not ns.json
    notify = (lambda line: print(f"emporion run: {line}", file=sys.stderr)) if interactive else None
    return asyncio.run(_run(Runner(spec, session.endpoints, output, notify)))


async def _run(runner: Runner) -> int:
    """Run with SIGINT/SIGTERM turned into :meth:`Runner.interrupt` (a second one: at once)."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    signals = (signal.SIGINT, signal.SIGTERM)

    def on_signal() -> None:
        if runner.interrupted.is_set() and main is not None:
            main.cancel()  # Asked twice: stop waiting for the teardown.
        runner.interrupt()

    for sig in signals:
        loop.add_signal_handler(sig, on_signal)
    try:
        return await runner.run()
    except asyncio.CancelledError:
        return 130
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def register(subparsers: Any) -> None:
    """Add ``run``."""
    parser = add_command(
        subparsers,
        "run",
        cmd_run,
        help="run a command on the cluster and stream its output",
        description=DESCRIPTION,
        check=_check,
    )
    parser.epilog = EPILOG
    parser.usage = "emporion run [flags] -- CMD [ARGS...]"
    parser.add_argument("--cpus", type=_number, default=0.1, help="CPUs per task [0.1]")
    parser.add_argument("--mem", type=_number, default=32.0, help="memory per task, MB [32]")
    parser.add_argument("--disk", type=_number, default=0.0, help="disk per task, MB [0]")
    parser.add_argument("--gpus", type=_number, default=0.0, help="GPUs per task [0]")
    parser.add_argument("--role", default="*", help="the role to get offers for [*]")
    parser.add_argument(
        "--name", help="the framework's name and the task ids' prefix [emporion-run; CMD's name]"
    )
    parser.add_argument(
        "--env", type=_variable, action="append", default=[], metavar="NAME=VALUE",
        help="an environment variable of the command (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--uri", action="append", default=[], metavar="URL",
        help="fetch URL into the sandbox first; archives are unpacked (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--instances", type=_count, default=1, metavar="N", help="run N copies of the task [1]"
    )
    parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="CMD ARGS", help="the command")

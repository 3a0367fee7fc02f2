"""hello_async: the hello framework written with the asyncio client.

::

    python -m examples.hello_async --master 127.0.0.1:5050 --tasks 10
    emporion local --run "python -m examples.hello_async --tasks 10"   # (EMPORION_MASTER)

Same behaviour as :mod:`examples.hello_framework` (N tasks ``echo hello $i`` with
``cpus:0.1;mem:32``, a JSON summary naming failed tasks' messages, exit status 0 when all
finished and 130 after Ctrl-C; the command line of :mod:`examples.common`), but as one coroutine
matching on typed events and awaiting its calls. It acknowledges status updates itself and
reconciles its unfinished tasks after a reconnection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from examples.common import INTERRUPTED, add_master_argument, failure_text, setup_logging
from framework_sdk import ClientConfig, SchedulerClient, SubscriptionError, events, messages
from protos.resources import Resources

TASK_RESOURCES = Resources.parse("cpus:0.1;mem:32")


@dataclass
class Summary:
    """What happened to the tasks."""

    tasks: int
    framework_id: str = ""
    launched: int = 0
    finished: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        """Whether every task reached a terminal state."""
        return self.finished + len(self.failed) >= self.tasks


async def offer_tasks(
    client: SchedulerClient, summary: Summary, offers: Sequence[messages.Offer]
) -> None:
    """Pack tasks into the offers; decline what is not needed."""
    for offer in offers:
        available = messages.offer_resources(offer)
        tasks = []
        while summary.launched < summary.tasks and available.contains(TASK_RESOURCES):
            i = summary.launched
            tasks.append(
                messages.task_info(f"hello-{i}", offer, TASK_RESOURCES, command=f"echo hello {i}")
            )
            summary.launched += 1
            available -= TASK_RESOURCES
        if tasks:
            await client.launch([offer.id], tasks)
        else:
            await client.decline([offer.id], messages.filters(refuse_seconds=60))
    if summary.launched == summary.tasks:
        await client.suppress()


async def run(master: str, tasks: int, name: str = "hello-async") -> Summary:
    """Run the framework to the end; returns the summary."""
    summary = Summary(tasks=tasks)
    running: set[str] = set()
    finished: set[str] = set()
    info = messages.framework_info(name)
    # EMPORION_SDK_* variables tune the client (EMPORION_SDK_CONNECT_TIMEOUT_SECONDS: how long
    # to try an unreachable master before giving up).
    async with SchedulerClient(master, info, config=ClientConfig.from_env()) as client:
        async for event in client.events():
            match event:
                case events.Subscribed(framework_id=framework_id, resubscribed=False):
                    summary.framework_id = framework_id.value
                case events.Subscribed(resubscribed=True):
                    # Updates may have been missed while away: ask for the tasks' states.
                    await client.reconcile(sorted(running))
                case events.Offers(offers=offers):
                    await offer_tasks(client, summary, offers)
                case events.Update(status=status):
                    task_id = status.task_id.value
                    if task_id in finished or task_id in summary.failed:
                        pass  # Updates are at-least-once: a repeat changes nothing.
                    elif status.state == messages.TASK_FINISHED:
                        running.discard(task_id)
                        finished.add(task_id)
                        summary.finished = len(finished)
                    elif messages.is_terminal(status.state):
                        running.discard(task_id)
                        summary.failed[task_id] = failure_text(status)
                    else:
                        running.add(task_id)
                    if status.uuid:
                        await client.acknowledge(status)
                    if summary.done:
                        await client.teardown()
                        break
                case events.Error(message=message):
                    summary.errors.append(message)
    return summary


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m examples.hello_async")
    add_master_argument(parser)
    parser.add_argument("--tasks", type=int, default=5, help="how many tasks to run")
    parser.add_argument("--name", default="hello-async", help="the framework's name")
    parser.add_argument("--timeout", type=float, default=None, help="give up after this long")
    args = parser.parse_args(argv)
    if args.tasks < 1:
        parser.error("--tasks must be at least 1")
    return args


async def _bounded(args: argparse.Namespace) -> Summary:
    async with asyncio.timeout(args.timeout):
        return await run(args.master, args.tasks, args.name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the framework; print a JSON summary; 0 when every task finished."""
    args = parse_args(argv)
    setup_logging()
    try:
        summary = asyncio.run(_bounded(args))
    except KeyboardInterrupt:  # The client was closed on the way out; nothing to report.
        return INTERRUPTED
    except SubscriptionError as error:
        summary = Summary(tasks=args.tasks, errors=[str(error)])
    except TimeoutError:
        summary = Summary(tasks=args.tasks, errors=[f"timed out after {args.timeout:g}s"])
    print(json.dumps(vars(summary), sort_keys=True))
    return 0 if summary.finished == args.tasks else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Before the driver ran: nothing to stop.
        sys.exit(INTERRUPTED)

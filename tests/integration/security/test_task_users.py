"""Item 4 attacks: tasks read /etc/shadow, escape their memory cgroup, write the agent's work
dir. Each now fails with the kernel's precise error, while the legitimate path works."""

from __future__ import annotations

from pathlib import Path

from agent.isolation.detect import probe_cgroups
from protos.v1 import mesos_pb2
from tests.integration.agent.fake_master import FakeMaster
from tests.integration.security.support import (
    UNPRIVILEGED,
    StartAgent,
    finish,
    needs_nobody,
    needs_root,
    run,
    sandbox_of,
    task_as,
    terminal,
)

Reason = mesos_pb2.TaskStatus

pytestmark = [needs_root, needs_nobody]


def root_memory_procs() -> Path:
    """The ``cgroup.procs`` of the root memory cgroup (v1's memory hierarchy, else v2)."""
    host = probe_cgroups()
    mount = host.v1.get("memory") or host.v2
    assert mount is not None
    return mount / "cgroup.procs"


def test_a_task_runs_as_its_user_owns_its_sandbox_and_cannot_read_shadow(
    master: FakeMaster, start_agent: StartAgent, work_dir: Path
) -> None:
    agent = start_agent(work_dir=work_dir)
    legit = (
        "id -un > who && echo mine > out && cat out"
        " && grep -E 'CapEff|CapBnd|NoNewPrivs' /proc/self/status"
    )
    run(master, task_as("legit", legit, UNPRIVILEGED))
    finished = finish(master, "legit")
    assert finished.status.state == mesos_pb2.TASK_FINISHED, finished.status.message
    sandbox = sandbox_of(agent.work_dir, "legit")
    assert (sandbox / "who").read_text() == f"{UNPRIVILEGED}\n"
    assert sandbox.owner() == UNPRIVILEGED
    assert (sandbox / "out").owner() == UNPRIVILEGED
    status = (sandbox / "stdout").read_text()
    assert "CapEff:\t0000000000000000" in status
    assert "CapBnd:\t0000000000000000" in status
    assert "NoNewPrivs:\t1" in status

    run(master, task_as("attack", "cat /etc/shadow", UNPRIVILEGED))
    failed = finish(master, "attack")
    assert failed.status.state == mesos_pb2.TASK_FAILED
    assert failed.status.message == "Command exited with status 1"
    stderr = (sandbox_of(agent.work_dir, "attack") / "stderr").read_text()
    assert "/etc/shadow: Permission denied" in stderr


def test_an_unknown_user_fails_the_task_naming_it(
    master: FakeMaster, start_agent: StartAgent, work_dir: Path
) -> None:
    start_agent(work_dir=work_dir)
    run(master, task_as("ghost", "true", "no-such-user-emporion"))
    failed = terminal(master, "ghost")
    assert failed.status.state == mesos_pb2.TASK_FAILED
    assert failed.status.reason == Reason.REASON_CONTAINER_LAUNCH_FAILED
    assert "user 'no-such-user-emporion' does not exist on this agent" in failed.status.message


def test_root_tasks_are_refused_unless_allowed(
    master: FakeMaster, start_agent: StartAgent, work_dir: Path
) -> None:
    start_agent(["--no-allow-root-tasks"], work_dir=work_dir)
    run(master, task_as("as-root", "true", None))  # The framework names no user: the agent's.
    refused = terminal(master, "as-root")
    assert refused.status.state == mesos_pb2.TASK_FAILED
    assert refused.status.reason == Reason.REASON_CONTAINER_LAUNCH_FAILED
    assert "refusing to run the task as root (user 'root', uid 0)" in refused.status.message
    assert "--no-allow-root-tasks" in refused.status.message
    run(master, task_as("named-root", "true", "root"))
    assert "uid 0" in terminal(master, "named-root").status.message
    run(master, task_as("as-nobody", "true", UNPRIVILEGED))
    assert finish(master, "as-nobody").status.state == mesos_pb2.TASK_FINISHED


def test_a_root_task_cannot_leave_its_memory_cgroup(
    master: FakeMaster, start_agent: StartAgent, work_dir: Path
) -> None:
    """The issue's attack: write itself into the root cgroup, then allocate past 64 MiB."""
    start_agent(work_dir=work_dir)
    procs = root_memory_procs()
    allocate = "python3 -c 'import time; b = b\"x\" * (300 << 20); time.sleep(0.1)'"
    escape = f"echo $$ > {procs}; {allocate}"
    run(master, task_as("escape", escape, "root", "cpus:0.5;mem:64"))
    failed = finish(master, "escape")
    assert failed.status.state == mesos_pb2.TASK_FAILED
    assert failed.status.reason == Reason.REASON_CONTAINER_LIMITATION_MEMORY
    stderr = (sandbox_of(work_dir, "escape") / "stderr").read_text()
    assert f"{procs}: Read-only file system" in stderr
    # The legitimate path: the cgroup file system can still be read (not cgroup.procs, which
    # in the task's PID namespace lists none of the root cgroup's processes).
    run(
        master,
        task_as("read-cgroups", f"grep -q . {procs.parent}/memory.stat", "root"),
    )
    assert finish(master, "read-cgroups").status.state == mesos_pb2.TASK_FINISHED


def test_tasks_cannot_write_the_work_dir_outside_their_sandbox(
    master: FakeMaster, start_agent: StartAgent, work_dir: Path
) -> None:
    start_agent(work_dir=work_dir)
    script = f"touch {work_dir}/planted; touch ../planted; mv ../latest ../moved; touch kept"
    run(master, task_as("root-writer", script, "root"))
    # The last command (in the sandbox) succeeds; the others fail on the read-only work dir.
    assert finish(master, "root-writer").status.state == mesos_pb2.TASK_FINISHED
    sandbox = sandbox_of(work_dir, "root-writer")
    stderr = (sandbox / "stderr").read_text()
    assert f"{work_dir}/planted': Read-only file system" in stderr
    assert "'../planted': Read-only file system" in stderr
    assert "Read-only file system" in stderr.splitlines()[2]  # mv ../latest
    assert not (work_dir / "planted").exists()
    assert not (sandbox.parent / "planted").exists()
    assert (sandbox / "kept").exists()  # The sandbox itself stays writable.
    assert (sandbox.parent / "latest").is_symlink()

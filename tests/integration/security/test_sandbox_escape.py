"""Item 5 attacks: a root task makes the file API serve host files through a hard link, a
re-pointed ``runs/latest`` or a sandbox replaced by a link.

With namespaces a task cannot even plant these (the work dir is read-only, the sandbox a
mount point: see test_task_users), so the attacks run under ``--isolation posix``, where a
root task has the host's file system, as every task had before; the file API must refuse them
on its own. Each test also reads a legitimate file of the same sandbox.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from protos.v1 import mesos_pb2
from tests.integration.agent.fake_master import FakeMaster
from tests.integration.security.support import (
    UNPRIVILEGED,
    StartAgent,
    files_get,
    finish,
    needs_nobody,
    needs_root,
    run,
    sandbox_of,
    task_as,
    virtual,
)

pytestmark = needs_root


@pytest.fixture
def secret(work_dir: Path) -> Path:
    """A root-only file on the work dir's file system (a hard link cannot cross file
    systems, so /etc/shadow itself may be out of reach of a link here)."""
    path = work_dir.parent / "shadow"
    path.write_text("root:$6$secret\n")
    path.chmod(0o600)
    return path


def test_a_hard_link_to_a_host_file_is_not_served(
    master: FakeMaster, start_agent: StartAgent, work_dir: Path, secret: Path
) -> None:
    agent = start_agent(work_dir=work_dir, isolation="posix")
    run(master, task_as("t1", f"ln {secret} shadow && echo linked", "root"))
    assert finish(master, "t1").status.state == mesos_pb2.TASK_FINISHED
    assert (sandbox_of(work_dir, "t1") / "shadow").stat().st_nlink == 2  # The attack worked.
    for endpoint in ("read", "download", "tail"):
        refused = files_get(agent, endpoint, virtual("t1", "shadow"))
        assert refused.status_code == 403, refused.text
        assert "has 2 hard links in a root-owned sandbox" in refused.json()["detail"]
    legit = files_get(agent, "read", virtual("t1", "stdout"))
    assert legit.status_code == 200
    assert legit.json()["data"] == "linked\n"


@needs_nobody
def test_a_hard_link_not_owned_by_the_sandbox_user_is_not_served(
    master: FakeMaster, start_agent: StartAgent, work_dir: Path, secret: Path
) -> None:
    agent = start_agent(work_dir=work_dir)
    run(master, task_as("t1", "echo mine > mine", UNPRIVILEGED))
    assert finish(master, "t1").status.state == mesos_pb2.TASK_FINISHED
    os.link(secret, sandbox_of(work_dir, "t1") / "shadow")  # As a root process could.
    refused = files_get(agent, "read", virtual("t1", "shadow"))
    assert refused.status_code == 403
    detail = refused.json()["detail"]
    assert "has 2 hard links and is owned by uid 0, not by the sandbox's owner" in detail
    assert files_get(agent, "read", virtual("t1", "mine")).json()["data"] == "mine\n"


def test_runs_latest_re_pointed_at_root_is_refused(
    master: FakeMaster, start_agent: StartAgent, work_dir: Path
) -> None:
    agent = start_agent(work_dir=work_dir, isolation="posix")
    run(master, task_as("t1", "echo out && ln -sfn / ../latest", "root"))
    assert finish(master, "t1").status.state == mesos_pb2.TASK_FINISHED
    runs = next(work_dir.glob("agents/*/frameworks/fw-1/executors/t1/runs"))
    assert os.readlink(runs / "latest") == "/"  # The attack worked.
    for path in (virtual("t1", "etc/passwd"), virtual("t1", "")):
        refused = files_get(agent, "read", path)
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"] == (
            f"the sandbox of '{path.rstrip('/')}' is not a plain directory:"
            f" {runs}/latest is a symbolic link"
        )
    [run_dir] = [p for p in runs.iterdir() if p.name != "latest"]
    legit = files_get(agent, "read", virtual("t1", "stdout", run=run_dir.name))
    assert legit.json()["data"] == "out\n"


def test_a_sandbox_replaced_by_a_link_to_root_is_refused(
    master: FakeMaster, start_agent: StartAgent, work_dir: Path
) -> None:
    agent = start_agent(work_dir=work_dir, isolation="posix")
    script = 'cid=$(basename "$PWD") && cd .. && mv "$cid" moved && ln -s / "$cid"'
    run(master, task_as("t1", script, "root"))
    assert finish(master, "t1").status.state == mesos_pb2.TASK_FINISHED
    runs = next(work_dir.glob("agents/*/frameworks/fw-1/executors/t1/runs"))
    cid = os.readlink(runs / "latest")
    assert os.readlink(runs / cid) == "/"  # The attack worked.
    for run_name in (cid, "latest"):
        path = virtual("t1", "etc/shadow", run=run_name)
        refused = files_get(agent, "read", path)
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"] == (
            f"the sandbox of '{path}' is not a plain directory: {runs}/{cid} is a symbolic link"
        )
        listing = files_get(agent, "browse", virtual("t1", "", run=run_name))
        assert listing.status_code == 403
    # The legitimate path: another task's sandbox is still served.
    run(master, task_as("t2", "echo fine", "root"))
    assert finish(master, "t2").status.state == mesos_pb2.TASK_FINISHED
    assert files_get(agent, "read", virtual("t2", "stdout")).json()["data"] == "fine\n"

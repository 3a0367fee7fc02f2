"""Every path the agent writes under its work directory, built in this one place.

The layout (after Mesos's ``src/slave/paths.hpp``, with ``agents`` for ``slaves``)::

    <work_dir>/
      meta/                                      checkpoint: what recovery reads back
        boot_id                                  host boot id at the agent's last start
        agents/
          latest -> <agent_id>                   the agent id to recover
          <agent_id>/
            agent.info                           AgentInfo (binary protobuf)
            executor.port                        port of the executor API, reused on restart
            frameworks/<framework_id>/
              framework.info                     FrameworkInfo
              executors/<executor_id>/
                executor.info                    ExecutorInfo
                runs/
                  latest -> <container_id>       the run to recover
                  <container_id>/
                    container.state              JSON from the isolation's Container.state()
                    exit.status                  JSON written by the container's init process
                    tasks/<task_id>/
                      task.info                  TaskInfo
                      task.updates               log of status updates and acks (see files.py)
                      task.container             default executor: the task's container id and
                                                 group (JSON)
                      container.state            default executor: JSON of the task's container
      agents/<agent_id>/frameworks/<framework_id>/executors/<executor_id>/runs/
        latest -> <container_id>
        <container_id>/                          the sandbox: stdout, stderr, fetched URIs
          tasks/<task_id>/                       default executor: each task's own sandbox
      fetch-cache/                               the URI fetcher's cache

Only checkpointing frameworks (``FrameworkInfo.checkpoint``) get anything under ``meta``.
Ids become path components, so :func:`check_id` refuses ids that could escape their directory.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "LATEST",
    "agent_info_path",
    "agent_meta_dir",
    "agents_meta_dir",
    "boot_id_path",
    "check_id",
    "container_state_path",
    "executor_info_path",
    "executor_meta_dir",
    "executor_port_path",
    "executor_sandbox_dir",
    "exit_status_path",
    "fetch_cache_dir",
    "framework_info_path",
    "framework_meta_dir",
    "latest_agent_link",
    "meta_dir",
    "run_meta_dir",
    "runs_meta_dir",
    "sandbox_dir",
    "sandbox_root",
    "task_info_path",
    "task_container_path",
    "task_container_state_path",
    "task_meta_dir",
    "task_sandbox_dir",
    "task_updates_path",
]

LATEST = "latest"


def check_id(kind: str, value: str) -> str:
    """Return ``value`` if it is a safe single path component; raise ValueError naming ``kind``."""
    if not value or value in (".", "..") or "/" in value or "\0" in value:
        raise ValueError(f"{kind} {value!r} cannot be used as a directory name")
    return value


def meta_dir(work_dir: Path) -> Path:
    """``<work_dir>/meta``: the checkpoint root."""
    return work_dir / "meta"


def boot_id_path(work_dir: Path) -> Path:
    """``meta/boot_id``."""
    return meta_dir(work_dir) / "boot_id"


def agents_meta_dir(work_dir: Path) -> Path:
    """``meta/agents``."""
    return meta_dir(work_dir) / "agents"


def latest_agent_link(work_dir: Path) -> Path:
    """``meta/agents/latest``, a symlink to the current agent's directory."""
    return agents_meta_dir(work_dir) / LATEST


def agent_meta_dir(work_dir: Path, agent_id: str) -> Path:
    """``meta/agents/<agent_id>``."""
    return agents_meta_dir(work_dir) / check_id("agent id", agent_id)


def agent_info_path(work_dir: Path, agent_id: str) -> Path:
    """``meta/agents/<agent_id>/agent.info``."""
    return agent_meta_dir(work_dir, agent_id) / "agent.info"


def executor_port_path(work_dir: Path, agent_id: str) -> Path:
    """``meta/agents/<agent_id>/executor.port``."""
    return agent_meta_dir(work_dir, agent_id) / "executor.port"


def framework_meta_dir(work_dir: Path, agent_id: str, framework_id: str) -> Path:
    """``meta/agents/<agent_id>/frameworks/<framework_id>``."""
    return (
        agent_meta_dir(work_dir, agent_id) / "frameworks" / check_id("framework id", framework_id)
    )


def framework_info_path(work_dir: Path, agent_id: str, framework_id: str) -> Path:
    """``.../frameworks/<framework_id>/framework.info``."""
    return framework_meta_dir(work_dir, agent_id, framework_id) / "framework.info"


def executor_meta_dir(work_dir: Path, agent_id: str, framework_id: str, executor_id: str) -> Path:
    """``.../frameworks/<framework_id>/executors/<executor_id>``."""
    base = framework_meta_dir(work_dir, agent_id, framework_id)
    return base / "executors" / check_id("executor id", executor_id)


def executor_info_path(work_dir: Path, agent_id: str, framework_id: str, executor_id: str) -> Path:
    """``.../executors/<executor_id>/executor.info``."""
    return executor_meta_dir(work_dir, agent_id, framework_id, executor_id) / "executor.info"


def runs_meta_dir(work_dir: Path, agent_id: str, framework_id: str, executor_id: str) -> Path:
    """``.../executors/<executor_id>/runs``."""
    return executor_meta_dir(work_dir, agent_id, framework_id, executor_id) / "runs"


def run_meta_dir(
    work_dir: Path, agent_id: str, framework_id: str, executor_id: str, container_id: str
) -> Path:
    """``.../executors/<executor_id>/runs/<container_id>``."""
    runs = runs_meta_dir(work_dir, agent_id, framework_id, executor_id)
    return runs / check_id("container id", container_id)


def container_state_path(
    work_dir: Path, agent_id: str, framework_id: str, executor_id: str, container_id: str
) -> Path:
    """``.../runs/<container_id>/container.state``."""
    run = run_meta_dir(work_dir, agent_id, framework_id, executor_id, container_id)
    return run / "container.state"


def exit_status_path(
    work_dir: Path, agent_id: str, framework_id: str, executor_id: str, container_id: str
) -> Path:
    """``.../runs/<container_id>/exit.status``."""
    run = run_meta_dir(work_dir, agent_id, framework_id, executor_id, container_id)
    return run / "exit.status"


def task_meta_dir(
    work_dir: Path,
    agent_id: str,
    framework_id: str,
    executor_id: str,
    container_id: str,
    *,
    task_id: str,
) -> Path:
    """``.../runs/<container_id>/tasks/<task_id>``."""
    run = run_meta_dir(work_dir, agent_id, framework_id, executor_id, container_id)
    return run / "tasks" / check_id("task id", task_id)


def task_info_path(
    work_dir: Path,
    agent_id: str,
    framework_id: str,
    executor_id: str,
    container_id: str,
    *,
    task_id: str,
) -> Path:
    """``.../tasks/<task_id>/task.info``."""
    base = task_meta_dir(
        work_dir, agent_id, framework_id, executor_id, container_id, task_id=task_id
    )
    return base / "task.info"


def task_updates_path(
    work_dir: Path,
    agent_id: str,
    framework_id: str,
    executor_id: str,
    container_id: str,
    *,
    task_id: str,
) -> Path:
    """``.../tasks/<task_id>/task.updates``."""
    base = task_meta_dir(
        work_dir, agent_id, framework_id, executor_id, container_id, task_id=task_id
    )
    return base / "task.updates"


def task_container_path(
    work_dir: Path,
    agent_id: str,
    framework_id: str,
    executor_id: str,
    container_id: str,
    *,
    task_id: str,
) -> Path:
    """``.../tasks/<task_id>/task.container`` (tasks of the default executor)."""
    base = task_meta_dir(
        work_dir, agent_id, framework_id, executor_id, container_id, task_id=task_id
    )
    return base / "task.container"


def task_container_state_path(
    work_dir: Path,
    agent_id: str,
    framework_id: str,
    executor_id: str,
    container_id: str,
    *,
    task_id: str,
) -> Path:
    """``.../tasks/<task_id>/container.state`` (tasks of the default executor)."""
    base = task_meta_dir(
        work_dir, agent_id, framework_id, executor_id, container_id, task_id=task_id
    )
    return base / "container.state"


def sandbox_root(work_dir: Path) -> Path:
    """``<work_dir>/agents``: every sandbox lies below it."""
    return work_dir / "agents"


def executor_sandbox_dir(
    work_dir: Path, agent_id: str, framework_id: str, executor_id: str
) -> Path:
    """``agents/<agent_id>/frameworks/<framework_id>/executors/<executor_id>``."""
    return (
        sandbox_root(work_dir)
        / check_id("agent id", agent_id)
        / "frameworks"
        / check_id("framework id", framework_id)
        / "executors"
        / check_id("executor id", executor_id)
    )


def sandbox_dir(
    work_dir: Path, agent_id: str, framework_id: str, executor_id: str, container_id: str
) -> Path:
    """``agents/.../executors/<executor_id>/runs/<container_id>``: one run's sandbox."""
    base = executor_sandbox_dir(work_dir, agent_id, framework_id, executor_id)
    return base / "runs" / check_id("container id", container_id)


def fetch_cache_dir(work_dir: Path) -> Path:
    """``<work_dir>/fetch-cache``."""
    return work_dir / "fetch-cache"


def task_sandbox_dir(
    work_dir: Path,
    agent_id: str,
    framework_id: str,
    executor_id: str,
    container_id: str,
    *,
    task_id: str,
) -> Path:
    """``agents/.../runs/<container_id>/tasks/<task_id>``: a default executor task's sandbox."""
    run = sandbox_dir(work_dir, agent_id, framework_id, executor_id, container_id)
    return run / "tasks" / check_id("task id", task_id)

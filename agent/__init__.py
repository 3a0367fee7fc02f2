"""The Emporion agent: turns accepted offers into running, isolated tasks and reports them reliably.

* ``agent.core`` — the sans-I/O state machine: tasks, executors, status-update streams;
* ``agent.checkpoint`` — the on-disk layout and atomic checkpoint files used for recovery;
* ``agent.runtime`` — the asyncio process around the core: master link, executor API, HTTP;
* ``agent.isolation`` — containers: cgroups v2/v1, namespaces, or the posix fallback;
* ``agent.fetcher``, ``agent.health``, ``agent.files``, ``agent.gc`` — URI fetching, health
  checks, the sandbox file API and sandbox garbage collection.

See ``docs/agent.md``.
"""

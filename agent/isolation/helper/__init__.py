"""The container launch helper: the code that runs in the process that becomes a container.

It never runs in the agent itself. The agent's fork server (:mod:`.forkserver`, started once
per agent process as ``python -I -S agent/isolation/init.py --fork-server``) receives each
launch over a unix socket and clones a copy of itself for it, which sets the container up
(:mod:`.supervise`, :mod:`.steps`, :mod:`.mounts`) and stays as the task's supervisor. Every
module here imports only the standard library and this package, so that the helper starts
without site-packages and never touches the agent's threads or state. See docs/isolation.md.
"""

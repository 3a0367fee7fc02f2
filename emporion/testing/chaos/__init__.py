"""The chaos suite's harness: real processes broken on purpose, and what must survive it.

* :mod:`.processes`: masters and agents as real processes, each in its own process group,
  that can be crashed (``kill -9``), frozen and restarted.
* :mod:`.cluster`: :class:`~.cluster.ChaosCluster` starts ZooKeeper (or a standalone master),
  masters and agents, waits for a leader and for agents, and always cleans up.
* :mod:`.framework`: :class:`~.framework.RecordingFramework`, a checkpointing framework on the
  SDK that counts every terminal update per task (lost, missing, duplicates).
* :mod:`.leaks`: processes, container cgroups and ``/run/emporion-*`` entries left behind.
* :mod:`.scenarios` and :mod:`.runner`: the scenarios of issue 10 and one report per run
  (``python -m bench.chaos`` prints them; ``tests/chaos`` asserts on them).

See docs/chaos.md. Importing this package starts nothing and loads no gRPC client; the modules
are imported by name.
"""

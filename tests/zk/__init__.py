"""Tests against real ZooKeeper servers: leader election and detection, the ZooKeeper registry.

:mod:`emporion.testing.zookeeper` starts Debian's ZooKeeper (one server or an ensemble) on free
loopback ports; :mod:`tests.zk.conftest` shares them per module and gives each test its own
znode path. Tests needing ZooKeeper are marked ``zk`` and skip, saying why, where it cannot
run. The pure parts (URL parsing, JSON, the registry over an in-memory store) are tested here
too, unmarked.
"""

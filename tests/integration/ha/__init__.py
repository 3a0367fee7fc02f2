"""High availability: masters elected through a real ZooKeeper, as real processes."""

"""Task health checks (command, HTTP, TCP) with Mesos's semantics.

* :mod:`agent.health.spec` turns a ``mesos_pb2.HealthCheck`` into a validated
  :class:`HealthCheckSpec` (ValueError naming the field otherwise);
* :mod:`agent.health.policy` is the pure state machine: when to probe, what to report, when to
  kill;
* :mod:`agent.health.probes` runs one probe;
* :mod:`agent.health.checker` is the asyncio driver the agent runtime uses::

      checker = HealthChecker(task.health_check, env, sandbox, on_change, on_kill)
      checker.start()
      ...
      await checker.stop()
"""

from agent.health.checker import HealthChecker
from agent.health.policy import HealthCheckPolicy, HealthDecision, ProbeResult
from agent.health.probes import probe_command, probe_http, probe_tcp, run_probe
from agent.health.spec import (
    CheckKind,
    CommandProbe,
    HealthCheckSpec,
    HttpProbe,
    TcpProbe,
)

__all__ = [
    "CheckKind",
    "CommandProbe",
    "HealthCheckPolicy",
    "HealthCheckSpec",
    "HealthChecker",
    "HealthDecision",
    "HttpProbe",
    "ProbeResult",
    "TcpProbe",
    "probe_command",
    "probe_http",
    "probe_tcp",
    "run_probe",
]

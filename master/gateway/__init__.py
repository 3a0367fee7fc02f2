"""Agent gateways: processes of the master's that end agents' streams (``--agent-gateways N``).

Why: every agent holds one long-lived gRPC stream to the master. In the master's one process
each stream costs about 37 KB that no Python change removes (gRPC's C core per call: arena,
HTTP/2 stream and flow-control state; the servicer's coroutines and reader task) and about a
millisecond of CPU to set up, so 50,000 agents took 2.1 GB and registered at 162 a second
(docs/benchmarks.md, "Scale"). A gateway takes that cost into another process: it serves the
same ``AgentGateway`` service as the master (``Connect`` and ``ConnectBatched``) on the agent
port, and carries every session it holds over one ``AgentRelay.Relay`` stream to the master, in
batches (:mod:`master.runtime.relay` is the master's end). The master keeps the single owner of
state: it decides everything, exactly as for an agent connected directly; a gateway only moves
messages and authenticates.

How it fits:

* The master starts ``N`` gateways (``python -m master.gateway``) when it starts, restarts one
  that exits, and stops them when it stops; each dies with the master (``PR_SET_PDEATHSIG``).
  They all listen on ``--agent-port`` with ``SO_REUSEPORT``, so the kernel spreads agents'
  connections across them; the master keeps the port reserved meanwhile.
* The relay runs over a Unix socket in the master's work directory (mode 0700), which only the
  master's user can open: a gateway's word for who an agent is needs no other proof.
* Agents are told the agent port: ``agent_address`` in the MasterInfo the master publishes to
  ZooKeeper (agents prefer it to ``grpc_address``), or given as ``--master`` directly. The
  master's own port still takes agents too.
* Authentication (credentials, client certificates) happens at the gateway, with the master's
  flags; authorization that needs the state (who owns an agent id) at the master.
* A gateway whose master does not lead, or cannot be reached, refuses agents as a master that
  does not lead refuses them: ``UNAVAILABLE``, with the leader's address when known. When a
  relay ends, each of its agents' streams ends with ``UNAVAILABLE`` and the agents reconnect
  (through any gateway) and reregister, as after any broken connection.
"""

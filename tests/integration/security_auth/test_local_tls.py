"""``emporion local --tls``: the whole local cluster over TLS, a framework run against it.

The example framework finds TLS through ``EMPORION_SDK_TLS_CA`` (set by ``local`` for
``--run``), the agents through ``--tls-ca``; the banner names the HTTPS address. A plaintext
client is refused by the same master (checked from inside ``--run``: the command tries a
plaintext subscription and must see it fail, then runs the example).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PLAINTEXT_PROBE = textwrap.dedent(
    """
    import os, sys, grpc
    from protos.v1 import scheduler_pb2, scheduler_pb2_grpc
    call = scheduler_pb2.Call(type=scheduler_pb2.Call.SUBSCRIBE)
    call.subscribe.framework_info.user = "tester"
    call.subscribe.framework_info.name = "plaintext"
    with grpc.insecure_channel(os.environ["EMPORION_MASTER"]) as channel:
        stream = scheduler_pb2_grpc.SchedulerStub(channel).Subscribe(call, timeout=5)
        try:
            next(iter(stream))
        except grpc.RpcError as error:
            print("plaintext refused:", error.code().name)
            sys.exit(0)
    sys.exit("a plaintext subscription was served")
    """
)


def test_local_tls_runs_a_framework_and_refuses_plaintext(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(PLAINTEXT_PROBE)
    script = tmp_path / "run.sh"
    script.write_text(
        f"set -e\n{sys.executable} {probe}\n"
        f'{sys.executable} -m examples.hello_framework --master "$EMPORION_MASTER"\n'
        # The task's output comes back through the master's sandbox proxy, over HTTPS to the
        # agent at the hostname it advertises.
        f"{sys.executable} -m emporion run -- echo output-over-tls\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "emporion",
            "local",
            "--tls",
            "--agents",
            "1",
            "--isolation",
            "posix",
            "--run",
            f"sh {script}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(web UI and HTTP API at https://" in result.stdout
    assert "plaintext refused: UNAVAILABLE" in result.stdout
    assert "output-over-tls" in result.stdout, result.stdout + result.stderr
    report = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("{")))
    assert report["finished"] == report["tasks"] == 5
    assert report["errors"] == []

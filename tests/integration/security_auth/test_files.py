"""The security files and flags: Mesos's credentials and ACL JSON, single credentials, TLS
material, the master's and agent's flags. Each bad input is refused with an error naming the
file (or flag) and what is wrong; nothing starts with it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import ConfigError as AgentConfigError
from agent.config import config_from_args as agent_config
from emporion.commands.certs import make_cluster_certs
from master.config import ConfigError, config_from_args
from protos.acls import Acls, Action
from protos.security import (
    AuthenticationError,
    Authenticator,
    SecurityConfigError,
    TlsConfig,
    basic_header,
    load_credential,
    load_credentials,
    parse_basic,
)

ROOT = Path(__file__).resolve().parents[3]


def write(path: Path, value: object) -> Path:
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return path


def test_credentials_file_is_mesos_json(tmp_path: Path) -> None:
    good = write(
        tmp_path / "c.json",
        {"credentials": [{"principal": "a", "secret": "x"}, {"principal": "b", "secret": "y"}]},
    )
    assert load_credentials(good) == {"a": "x", "b": "y"}
    cases = {
        "[]": 'expected {"credentials": [{"principal": ...',
        '{"credentials": [{"principal": "a"}]}': "credentials[0]: 'secret' of 'a' must be a string",
        '{"credentials": [{"secret": "x"}]}': "credentials[0]: 'principal' must be a non-empty",
        '{"credentials": [{"principal": "a", "secret": "x"}, {"principal": "a", "secret": "y"}]}': (
            "principal 'a' appears twice"
        ),
        '{"credentials": [{"principal": "a:b", "secret": "x"}]}': "contain no ':'",
        "{": "not JSON",
    }
    for text, message in cases.items():
        path = write(tmp_path / "bad.json", text)
        with pytest.raises(SecurityConfigError) as caught:
            load_credentials(path)
        assert str(caught.value).startswith(f"--credentials {path}: ")
        assert message in str(caught.value)
        assert 'secret": "y' not in str(caught.value)
    with pytest.raises(SecurityConfigError, match="No such file"):
        load_credentials(tmp_path / "missing.json")


def test_single_credential_in_json_or_mesos_text(tmp_path: Path) -> None:
    assert (
        load_credential(write(tmp_path / "a", '{"principal": "p", "secret": "s"}')).principal == "p"
    )
    text = load_credential(write(tmp_path / "b", "p s\n"))
    assert (text.principal, text.secret) == ("p", "s")
    assert "s" not in repr(text).replace("principal", "").replace("ClientCredential", "")
    with pytest.raises(SecurityConfigError, match="expected JSON or one line 'principal secret'"):
        load_credential(write(tmp_path / "c", "p s extra"))


def test_basic_authorization_and_constant_time_check() -> None:
    authenticator = Authenticator({"alice": "pw:with:colons"})
    assert authenticator.authenticate(basic_header("alice", "pw:with:colons")) == "alice"
    assert parse_basic(basic_header("alice", "")) == ("alice", "")
    failures = {
        None: "no credentials given",
        basic_header("alice", "wrong"): "invalid credentials for principal 'alice'",
        basic_header("mallory", "x"): "invalid credentials for principal 'mallory'",
        "Bearer abc": "not HTTP basic",
        "Basic !!!": "not valid base64",
        "Basic " + "bm9jb2xvbg==": "no 'principal:secret'",
    }
    for value, message in failures.items():
        with pytest.raises(AuthenticationError) as caught:
            authenticator.authenticate(value)
        assert message in str(caught.value)
        assert "wrong" not in str(caught.value)


def test_acls_first_match_wins_and_permissive_decides_the_rest(tmp_path: Path) -> None:
    acls = Acls.parse(
        {
            "permissive": False,
            "register_frameworks": [
                {"principals": {"values": ["ops"]}, "roles": {"type": "ANY"}},
                {"principals": {"values": ["etl"]}, "roles": {"values": ["etl"]}},
                {"principals": {"type": "ANY"}, "roles": {"type": "NONE"}},
            ],
            "run_tasks": [{"principals": {"type": "NONE"}, "users": {"values": ["nobody"]}}],
        }
    )
    assert acls.allows(Action.REGISTER_FRAMEWORKS, "ops", "anything")
    assert acls.allows(Action.REGISTER_FRAMEWORKS, "etl", "etl")
    assert not acls.allows(Action.REGISTER_FRAMEWORKS, "etl", "ops")
    assert not acls.allows(Action.REGISTER_FRAMEWORKS, None, "etl")
    # principals NONE matches only requests without a principal.
    assert acls.allows(Action.RUN_TASKS, None, "nobody")
    assert not acls.allows(Action.RUN_TASKS, "etl", "nobody")  # No rule: permissive false.
    assert Acls().allows(Action.UPDATE_QUOTAS, "anyone", "r")  # No file: permissive.
    bad = {
        '{"permissive": "no"}': "'permissive' must be true or false",
        '{"register_framework": []}': "unknown action 'register_framework'",
        '{"run_tasks": {}}': "run_tasks must be a list of rules",
        '{"run_tasks": [{"principals": {"type": "ANY"}, "roles": {"type": "ANY"}}]}': (
            "run_tasks[0]: expected exactly 'principals' and 'users'"
        ),
        '{"run_tasks": [{"principals": {"type": "SOME"}, "users": {"type": "ANY"}}]}': (
            "run_tasks[0].principals: 'type' must be ANY or NONE, got 'SOME'"
        ),
        '{"run_tasks": [{"principals": {"values": "a"}, "users": {"type": "ANY"}}]}': (
            "run_tasks[0].principals: 'values' must be a list of strings"
        ),
    }
    for text, message in bad.items():
        path = write(tmp_path / "acls.json", text)
        with pytest.raises(SecurityConfigError) as caught:
            Acls.load(path)
        assert str(caught.value).startswith(f"--acls {path}: ")
        assert message in str(caught.value)


def test_master_flags(tmp_path: Path) -> None:
    credentials = write(tmp_path / "c.json", {"credentials": []})
    config = config_from_args(
        ["--registry", "memory", "--authenticate-frameworks", "--credentials", str(credentials)],
        {},
    )
    assert config.authenticate_frameworks
    assert not config.authenticate_agents
    env = {"EMPORION_AUTHENTICATE_AGENTS": "true", "EMPORION_CREDENTIALS": str(credentials)}
    assert config_from_args(["--registry", "memory"], env).authenticate_agents
    refusals = {
        ("--authenticate-agents",): "--authenticate-agents: needs --credentials FILE",
        ("--tls-cert", "c.pem"): "--tls-cert and --tls-key: give both, or neither",
        ("--tls-cert", "c", "--tls-key", "k", "--tls-require-client-cert"): (
            "--tls-require-client-cert: needs --tls-cert, --tls-key and --tls-ca"
        ),
        ("--authenticate-agents", "maybe"): "--authenticate-agents: expected true or false",
    }
    for flags, message in refusals.items():
        with pytest.raises(ConfigError) as caught:
            config_from_args(["--registry", "memory", *flags], {})
        assert message in str(caught.value)


def test_master_refuses_unusable_files_in_one_line(tmp_path: Path) -> None:
    acls = write(tmp_path / "acls.json", '{"run_tasks": 3}')
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "master",
            "--registry",
            "memory",
            "--port",
            "0",
            "--acls",
            str(acls),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == f"emporion master: --acls {acls}: run_tasks must be a list of rules\n"
    key = write(tmp_path / "key.pem", "not a key")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "master",
            "--registry",
            "memory",
            "--port",
            "0",
            "--tls-cert",
            str(key),
            "--tls-key",
            str(key),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"emporion master: TLS files {key}, {key}: ")
    assert len(result.stderr.splitlines()) == 1


def test_agent_flags(tmp_path: Path) -> None:
    credential = write(tmp_path / "cred", "agent secret")
    base = ["--master", "127.0.0.1:5050", "--work-dir", str(tmp_path / "w"), "--ip", "127.0.0.1"]
    config = agent_config([*base, "--credential", str(credential)], {})
    assert config.credential == credential
    refusals = {
        ("--credential", str(tmp_path / "none")): "--credential",
        ("--credential", str(write(tmp_path / "bad", "one two three"))): "expected JSON or one",
        ("--tls-cert", str(credential)): "--tls-cert and --tls-key: give both, or neither",
        ("--tls-ca", str(tmp_path / "ca.pem")): f"--tls-ca {tmp_path / 'ca.pem'}: no such file",
    }
    for flags, message in refusals.items():
        with pytest.raises(AgentConfigError) as caught:
            agent_config([*base, *flags], {})
        assert message in str(caught.value)


def test_certs_are_usable_and_never_overwritten(tmp_path: Path) -> None:
    written = make_cluster_certs(tmp_path, ["node1", "10.1.2.3"], ["alice"])
    assert [p.name for p in written] == [
        "ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "alice.pem", "alice-key.pem"
    ]  # fmt: skip
    assert (tmp_path / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    TlsConfig(
        tmp_path / "server.pem", tmp_path / "server-key.pem", tmp_path / "ca.pem"
    ).check_server()
    with pytest.raises(FileExistsError, match=r"ca\.pem exists"):
        make_cluster_certs(tmp_path, ["node1"])
    result = subprocess.run(
        [sys.executable, "-m", "emporion", "certs", "--out", str(tmp_path), "--hosts", "x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"emporion certs: {tmp_path / 'ca.pem'} exists: remove it or choose another --out\n"
    )

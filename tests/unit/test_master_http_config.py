"""``--http-port``: 8080 from the command line, none for configs built in code, ``off``, 0."""

from __future__ import annotations

import pytest

from master.config import DEFAULT_HTTP_PORT, ConfigError, MasterConfig, config_from_args

BASE = ["--registry", "memory"]


def test_the_command_line_defaults_to_8080_but_code_to_no_http() -> None:
    assert DEFAULT_HTTP_PORT == 8080
    assert config_from_args(BASE, {}).http_port == 8080
    assert MasterConfig(registry="memory").http_port is None


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        (["--http-port", "0"], {}, 0),
        (["--http-port", "9090"], {}, 9090),
        (["--http-port", "off"], {}, None),
        (["--http-port", "OFF"], {}, None),
        ([], {"EMPORION_HTTP_PORT": "off"}, None),
        ([], {"EMPORION_HTTP_PORT": "0"}, 0),
        (["--http-port", "7070"], {"EMPORION_HTTP_PORT": "off"}, 7070),
    ],
)
def test_flag_and_environment(
    argv: list[str], environ: dict[str, str], expected: int | None
) -> None:
    assert config_from_args(BASE + argv, environ).http_port == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--http-port", "x"], "--http-port: expected a port number or 'off', got 'x'"),
        (["--http-port", "-1"], "--http-port: expected a port number or 'off', got '-1'"),
        (["--http-port", "70000"], "--http-port: must be between 0 and 65535 or 'off'"),
        (["--port", "5050", "--http-port", "5050"], r"--http-port: must differ from --port"),
    ],
)
def test_bad_values_name_the_flag(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_args(BASE + argv, {})


def test_both_ports_may_be_chosen_by_the_system() -> None:
    assert MasterConfig(registry="memory", port=0, http_port=0).http_port == 0

"""The ``emporion`` command line: subcommands are registered and bad input exits 2."""

from __future__ import annotations

import json

import pytest

from emporion.cli import build_parser, main


def test_every_subcommand_is_registered() -> None:
    help_text = build_parser().format_help()
    for name in ("master", "agent", "resources"):
        assert name in help_text


def test_resources_prints_canonical_form(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resources", " mem:512 ; cpus:0.5;ports:[31000-31001,31002-31005]"]) == 0
    assert capsys.readouterr().out.strip() == "cpus:0.5;mem:512;ports:[31000-31005]"


def test_resources_json_is_mesos_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resources", "--json", "cpus(analytics):2"]) == 0
    (item,) = json.loads(capsys.readouterr().out)
    assert item["name"] == "cpus"
    assert item["scalar"] == {"value": 2.0}
    assert item["reservations"][0]["role"] == "analytics"


def test_bad_resources_exit_2_naming_the_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resources", "cpus:4;mem:-1"]) == 2
    err = capsys.readouterr().err
    assert "mem:-1" in err
    assert err.startswith("emporion resources:")


def test_unknown_subcommand_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    assert "frobnicate" in capsys.readouterr().err

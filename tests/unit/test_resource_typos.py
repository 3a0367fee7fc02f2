"""A resource name one edit away from a known one is flagged (``cpu`` for ``cpus``)."""

from __future__ import annotations

import pytest

from protos.resources import Resources, likely_typos


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        ("cpu:4", "cpus"),  # deletion
        ("cpuss:4", "cpus"),  # insertion
        ("mam:64", "mem"),  # substitution
        ("dsik:10", "disk"),  # swap
        ("port:[1-2]", "ports"),
        ("gpu:1", "gpus"),
        ("Mem:64", "mem"),  # case
    ],
)
def test_a_near_miss_names_the_known_resource(text: str, meant: str) -> None:
    (warning,) = likely_typos(Resources.parse(text))
    assert f"did you mean {meant}?" in warning
    assert repr(text.partition(":")[0]) in warning


@pytest.mark.parametrize(
    "text", ["cpus:4;mem:64;disk:1;ports:[1-2];gpus:1", "licenses:3", "fpga:2"]
)
def test_known_and_custom_names_pass_quietly(text: str) -> None:
    assert likely_typos(Resources.parse(text)) == []

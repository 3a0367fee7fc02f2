"""The /files API through httpx.ASGITransport, over real files, links and FIFOs."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agent.files import FilesError, create_app, resolve
from agent.files.paths import Target, open_regular

ROOT = "/fw/e1/runs/latest"
LINES = [f"line {i}" for i in range(1, 21)]


@pytest.fixture
def sandboxes(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "secret.txt").write_text("top secret\n")
    box = tmp_path / "work" / "sb1"
    (box / "sub" / "deeper").mkdir(parents=True)
    (box / "stdout").write_text("\n".join(LINES) + "\n")
    (box / "stderr").write_text("")
    (box / "sub" / "deeper" / "f.txt").write_text("deep")
    (box / "binary").write_bytes(b"ok\xff\xfe!")
    (box / "big.bin").write_bytes(bytes(range(256)) * 2000)
    (box / "link_in").symlink_to("sub")
    (box / "link_out").symlink_to("../../secret.txt")
    (box / "abs_link").symlink_to(tmp_path / "secret.txt")
    (box / "dir_link_out").symlink_to(tmp_path)
    (box / "dangling_in").symlink_to("nothing-here")
    os.mkfifo(box / "fifo")
    other = tmp_path / "work" / "sb2"
    other.mkdir()
    (other / "x").write_text("x")
    return {ROOT: box, "sb2": other}


def make_app(roots: Mapping[str, Path]) -> FastAPI:
    return create_app(lambda: roots, max_read_length=1024, max_tail_lines=100)


def get_all(app: FastAPI, requests: list[tuple[str, dict[str, str]]]) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
            return [await client.get(url, params=params) for url, params in requests]

    return asyncio.run(run())


def get(app: FastAPI, url: str, **params: str) -> httpx.Response:
    return get_all(app, [(url, params)])[0]


def json_of(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def p(rel: str = "") -> str:
    return f"{ROOT}/{rel}" if rel else ROOT


def test_browse_lists_a_sandbox(sandboxes: dict[str, Path]) -> None:
    listing = json_of(get(make_app(sandboxes), "/files/browse", path=p()))
    names = [entry["name"] for entry in listing]
    assert names == sorted(names)
    by_name = {entry["name"]: entry for entry in listing}
    assert set(by_name) >= {"stdout", "stderr", "sub", "link_out", "fifo"}
    stdout = by_name["stdout"]
    assert stdout["path"] == p("stdout")
    assert stdout["size"] == len("\n".join(LINES)) + 1
    assert stdout["mode"].startswith("-rw")
    assert stdout["is_dir"] is False
    assert isinstance(stdout["mtime"], float)
    assert by_name["sub"]["is_dir"] is True
    assert by_name["sub"]["mode"].startswith("d")
    # Links are listed as links, not followed.
    assert by_name["link_out"]["mode"].startswith("l")
    assert by_name["link_out"]["is_dir"] is False


def test_browse_virtual_directories_and_single_files(sandboxes: dict[str, Path]) -> None:
    app = make_app(sandboxes)
    top, fw, single, through_link = get_all(
        app,
        [
            ("/files/browse", {"path": "/"}),
            ("/files/browse", {"path": "/fw"}),
            ("/files/browse", {"path": p("stdout")}),
            ("/files/browse", {"path": p("link_in/deeper")}),
        ],
    )
    assert [(e["name"], e["path"], e["is_dir"]) for e in json_of(top)] == [
        ("fw", "/fw", True),
        ("sb2", "/sb2", True),
    ]
    assert [e["path"] for e in json_of(fw)] == ["/fw/e1"]
    assert [e["path"] for e in json_of(single)] == [p("stdout")]
    assert [e["name"] for e in json_of(through_link)] == ["f.txt"]


def test_read_follows_mesos_semantics(sandboxes: dict[str, Path]) -> None:
    app = make_app(sandboxes)
    size = (sandboxes[ROOT] / "stdout").stat().st_size
    no_offset, minus_one, whole, part, past, zero, binary, capped = get_all(
        app,
        [
            ("/files/read", {"path": p("stdout")}),
            ("/files/read", {"path": p("stdout"), "offset": "-1"}),
            ("/files/read", {"path": p("stdout"), "offset": "0"}),
            ("/files/read", {"path": p("stdout"), "offset": "5", "length": "3"}),
            ("/files/read", {"path": p("stdout"), "offset": str(size + 10)}),
            ("/files/read", {"path": p("stdout"), "offset": "0", "length": "0"}),
            ("/files/read", {"path": p("binary"), "offset": "0"}),
            ("/files/read", {"path": p("big.bin"), "offset": "100", "length": "999999"}),
        ],
    )
    assert json_of(no_offset) == {"data": "", "offset": size}
    assert json_of(minus_one) == {"data": "", "offset": size}
    assert json_of(whole) == {"data": "\n".join(LINES) + "\n", "offset": 0}
    assert json_of(part) == {"data": "1\nl", "offset": 5}
    assert json_of(past) == {"data": "", "offset": size + 10}
    assert json_of(zero) == {"data": "", "offset": 0}
    assert json_of(binary) == {"data": "ok\ufffd\ufffd!", "offset": 0}
    capped_json = json_of(capped)
    assert capped_json["offset"] == 100
    assert len(capped_json["data"]) == 1024  # the cap given to create_app


def test_tail_returns_the_last_lines(sandboxes: dict[str, Path]) -> None:
    app = make_app(sandboxes)
    size = (sandboxes[ROOT] / "stdout").stat().st_size
    two, default, none, empty = get_all(
        app,
        [
            ("/files/tail", {"path": p("stdout"), "lines": "2"}),
            ("/files/tail", {"path": p("stdout")}),
            ("/files/tail", {"path": p("stdout"), "lines": "0"}),
            ("/files/tail", {"path": p("stderr"), "lines": "5"}),
        ],
    )
    two_json = json_of(two)
    assert two_json["data"] == "line 19\nline 20\n"
    assert two_json["offset"] == size - len("line 19\nline 20\n")
    assert two_json["size"] == size
    assert json_of(default)["data"] == "\n".join(LINES[-10:]) + "\n"
    assert json_of(none) == {"data": "", "offset": size, "size": size}
    assert json_of(empty) == {"data": "", "offset": 0, "size": 0}


def test_tail_without_a_final_newline_and_over_many_blocks(tmp_path: Path) -> None:
    box = tmp_path / "box"
    box.mkdir()
    (box / "log").write_bytes(b"x" * 200_000 + b"\nsecond\nthird")
    tail = json_of(get(make_app({"b": box}), "/files/tail", path="/b/log", lines="2"))
    assert tail["data"] == "second\nthird"


def test_download_streams_the_file(sandboxes: dict[str, Path]) -> None:
    response = get(make_app(sandboxes), "/files/download", path=p("big.bin"))
    assert response.status_code == 200
    assert response.content == (sandboxes[ROOT] / "big.bin").read_bytes()
    assert response.headers["content-length"] == str(512_000)
    assert response.headers["content-disposition"].startswith('attachment; filename="big.bin"')
    assert response.headers["content-type"] == "application/octet-stream"
    text = get(make_app(sandboxes), "/files/download", path="/sb2/x")
    assert text.content == b"x"


REFUSALS = [
    # (endpoint, path, status, fragment of the detail)
    ("browse", None, 400, "'path' is required"),
    ("browse", f"{ROOT}/../sb2", 400, "'..' segment"),
    ("browse", "/sb2/../../etc", 400, "'..' segment"),
    ("browse", "/etc/passwd", 403, "not inside any sandbox"),
    ("browse", p("link_out"), 403, "outside its sandbox"),
    ("browse", p("dir_link_out"), 403, "outside its sandbox"),
    ("browse", p("dir_link_out/secret.txt"), 403, "outside its sandbox"),
    ("browse", p("missing"), 404, "does not exist"),
    ("browse", p("dangling_in"), 404, "does not exist"),
    ("read", p("link_out"), 403, "outside its sandbox"),
    ("read", p("abs_link"), 403, "outside its sandbox"),
    ("read", p("sub"), 400, "is a directory"),
    ("read", "/fw", 400, "is a directory"),
    ("read", p("fifo"), 400, "not a regular file"),
    ("read", p("nope.txt"), 404, "does not exist"),
    ("read", "/sb2/x\x00y", 400, "NUL"),
    ("tail", p("link_out"), 403, "outside its sandbox"),
    ("tail", p("sub"), 400, "is a directory"),
    ("tail", "/var/log/syslog", 403, "not inside any sandbox"),
    ("download", p("abs_link"), 403, "outside its sandbox"),
    ("download", p("dir_link_out/secret.txt"), 403, "outside its sandbox"),
    ("download", p(), 400, "is a directory"),
    ("download", "/", 400, "is a directory"),
    ("download", p("fifo"), 400, "not a regular file"),
    ("download", p("gone"), 404, "does not exist"),
]


@pytest.mark.parametrize(("endpoint", "path", "status", "detail"), REFUSALS)
def test_confinement_and_errors(
    sandboxes: dict[str, Path], endpoint: str, path: str | None, status: int, detail: str
) -> None:
    params = {} if path is None else {"path": path}
    body = json_of(get(make_app(sandboxes), f"/files/{endpoint}", **params), status)
    assert detail in body["detail"]


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"offset": "abc"}, "'offset' must be an integer"),
        ({"offset": "-2"}, "'offset' must be >= -1"),
        ({"length": "-1"}, "'length' must be >= 0"),
        ({"offset": "0", "length": "1.5"}, "'length' must be an integer"),
    ],
)
def test_bad_read_parameters(
    sandboxes: dict[str, Path], params: dict[str, str], detail: str
) -> None:
    body = json_of(get(make_app(sandboxes), "/files/read", path=p("stdout"), **params), 400)
    assert detail in body["detail"]


def test_bad_tail_parameters(sandboxes: dict[str, Path]) -> None:
    app = make_app(sandboxes)
    too_many, negative = get_all(
        app,
        [
            ("/files/tail", {"path": p("stdout"), "lines": "101"}),
            ("/files/tail", {"path": p("stdout"), "lines": "-3"}),
        ],
    )
    assert "'lines' must be <= 100" in json_of(too_many, 400)["detail"]
    assert "'lines' must be >= 0" in json_of(negative, 400)["detail"]


def test_a_removed_sandbox_is_not_found(sandboxes: dict[str, Path], tmp_path: Path) -> None:
    roots = {**sandboxes, "gone": tmp_path / "work" / "gc-ed"}
    body = json_of(get(make_app(roots), "/files/browse", path="/gone"), 404)
    assert "no longer exists" in body["detail"]


def test_roots_are_asked_for_on_every_request(sandboxes: dict[str, Path]) -> None:
    roots: dict[str, Path] = {}
    app = create_app(lambda: roots)
    assert get(app, "/files/browse", path="/sb2").status_code == 403
    roots["sb2"] = sandboxes["sb2"]
    assert [e["name"] for e in json_of(get(app, "/files/browse", path="/sb2"))] == ["x"]


def test_a_file_swapped_for_a_link_after_resolution_is_refused(
    sandboxes: dict[str, Path], tmp_path: Path
) -> None:
    box = sandboxes["sb2"]
    target = resolve("/sb2/x", sandboxes)
    assert isinstance(target, Target)
    (box / "x").unlink()
    (box / "x").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(FilesError) as info:
        open_regular(target)
    assert info.value.status == 403


def test_invalid_root_names_are_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid sandbox root name"):
        resolve("/x", {"../x": tmp_path})

"""Opening beneath a sandbox, by openat2 and by the O_NOFOLLOW walk, on real files and links.

Both ways must agree: links inside are followed, anything leading out is refused, and the
sandbox directory itself may have no link on its path.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.files.beneath import OutsideError, has_openat2, open_beneath_fd, open_no_links

WAYS = [
    pytest.param(
        True, id="openat2", marks=pytest.mark.skipif(not has_openat2(), reason="no openat2")
    ),
    pytest.param(False, id="walk"),
]


@pytest.fixture
def box(tmp_path: Path) -> Path:
    (tmp_path / "outside.txt").write_text("secret\n")
    box = tmp_path / "box"
    (box / "sub" / "deeper").mkdir(parents=True)
    (box / "sub" / "deeper" / "f.txt").write_text("deep\n")
    (box / "link_in").symlink_to("sub/deeper")
    (box / "up_and_back").symlink_to("sub/../sub/deeper/f.txt")
    (box / "chain").symlink_to("link_in")
    (box / "rel_out").symlink_to("../outside.txt")
    (box / "abs_out").symlink_to(tmp_path / "outside.txt")
    (box / "proc_magic").symlink_to("/proc/self/root/etc/passwd")
    (box / "loop_a").symlink_to("loop_b")
    (box / "loop_b").symlink_to("loop_a")
    (box / "sub" / "escape").symlink_to("../../outside.txt")
    return box


@pytest.fixture
def root_fd(box: Path) -> Iterator[int]:
    fd = open_no_links(str(box))
    yield fd
    os.close(fd)


def read(fd: int) -> str:
    try:
        return os.read(fd, 100).decode()
    finally:
        os.close(fd)


@pytest.mark.parametrize("use_openat2", WAYS)
@pytest.mark.parametrize(
    "relative",
    ["sub/deeper/f.txt", "link_in/f.txt", "up_and_back", "chain/f.txt", "./sub//deeper/f.txt"],
)
def test_links_inside_are_followed(root_fd: int, use_openat2: bool, relative: str) -> None:
    fd = open_beneath_fd(root_fd, relative, os.O_RDONLY, use_openat2=use_openat2)
    assert read(fd) == "deep\n"


@pytest.mark.parametrize("use_openat2", WAYS)
@pytest.mark.parametrize(
    "relative",
    ["rel_out", "abs_out", "sub/escape", "../outside.txt", "sub/../../outside.txt", "proc_magic"],
)
def test_anything_leading_out_is_refused(root_fd: int, use_openat2: bool, relative: str) -> None:
    with pytest.raises(OutsideError):
        open_beneath_fd(root_fd, relative, os.O_RDONLY, use_openat2=use_openat2)


@pytest.mark.parametrize("use_openat2", WAYS)
def test_loops_missing_files_and_directories(root_fd: int, use_openat2: bool) -> None:
    with pytest.raises(OSError, match="Too many levels of symbolic links") as loop:
        open_beneath_fd(root_fd, "loop_a", os.O_RDONLY, use_openat2=use_openat2)
    assert loop.value.errno == errno.ELOOP
    with pytest.raises(FileNotFoundError):
        open_beneath_fd(root_fd, "sub/nothing", os.O_RDONLY, use_openat2=use_openat2)
    with pytest.raises(NotADirectoryError):
        open_beneath_fd(root_fd, "sub/deeper/f.txt/x", os.O_RDONLY, use_openat2=use_openat2)
    fd = open_beneath_fd(root_fd, ".", os.O_RDONLY | os.O_DIRECTORY, use_openat2=use_openat2)
    try:
        assert sorted(os.listdir(fd))[:2] == ["abs_out", "chain"]
    finally:
        os.close(fd)


def test_the_sandbox_path_may_hold_no_link(box: Path, tmp_path: Path) -> None:
    (tmp_path / "alias").symlink_to(box)
    with pytest.raises(OutsideError, match=f"^{tmp_path}/alias is a symbolic link$"):
        open_no_links(str(tmp_path / "alias" / "sub"))
    with pytest.raises(OutsideError, match="is not a directory"):
        open_no_links(str(tmp_path / "outside.txt"))
    with pytest.raises(FileNotFoundError):
        open_no_links(str(tmp_path / "gone"))
    with pytest.raises(ValueError, match="not an absolute path"):
        open_no_links("relative/path")

"""Generate the Python code for the `.proto` sources under ``protos/v1``.

``python -m protos.codegen`` writes ``*_pb2.py``, ``*_pb2_grpc.py`` and the typed stubs
(``*_pb2.pyi``, ``*_pb2_grpc.pyi``, from mypy-protobuf) next to each source.
``python -m protos.codegen --check`` regenerates into a temporary directory and exits 1 when any
committed file differs, naming it. Generated files are committed and never edited by hand.

Imports inside the sources are relative to the repository root (``import "protos/v1/mesos.proto"``)
so the generated modules import each other as ``protos.v1.mesos_pb2``.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
GENERATED_SUFFIXES = ("_pb2.py", "_pb2_grpc.py", "_pb2.pyi", "_pb2_grpc.pyi")


def proto_sources(root: Path = REPO_ROOT) -> list[Path]:
    """The `.proto` files to compile, sorted so that output is deterministic."""
    return sorted((root / "protos" / "v1").glob("*.proto"))


def expected_outputs(sources: list[Path], root: Path = REPO_ROOT) -> list[Path]:
    """Every generated file the sources produce, as paths relative to the repository root."""
    out: list[Path] = []
    for src in sources:
        stem = src.relative_to(root).with_suffix("")
        out.extend(Path(f"{stem}{suffix}") for suffix in GENERATED_SUFFIXES)
    return out


def _plugin(name: str) -> str:
    """Locate a protoc plugin installed beside this interpreter (the virtualenv's bin)."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if found is None:
        raise SystemExit(f"codegen: protoc plugin {name!r} not found; install the 'dev' extra")
    return found


def generate(out_dir: Path, root: Path = REPO_ROOT) -> None:
    """Run protoc (from grpcio-tools) with the mypy-protobuf plugins into ``out_dir``."""
    from grpc_tools import protoc

    sources = proto_sources(root)
    if not sources:
        raise SystemExit(f"codegen: no .proto files under {root / 'protos' / 'v1'}")
    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"--proto_path={root}",
        f"--proto_path={well_known}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out=quiet:{out_dir}",
        f"--mypy_grpc_out=quiet:{out_dir}",
        *(str(src.relative_to(root)) for src in sources),
    ]
    status = protoc.main(args)
    if status != 0:
        raise SystemExit(f"codegen: protoc failed with status {status}")


def stale_files(root: Path = REPO_ROOT) -> list[str]:
    """Generated files that are missing, differ from a fresh generation, or have no source."""
    expected = expected_outputs(proto_sources(root), root)
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp), root)
        for rel in expected:
            fresh, committed = Path(tmp) / rel, root / rel
            if not committed.exists():
                problems.append(f"{rel}: missing")
            elif not filecmp.cmp(fresh, committed, shallow=False):
                problems.append(f"{rel}: differs from its .proto source")
    wanted = {str(p) for p in expected}
    for suffix in GENERATED_SUFFIXES:
        for path in (root / "protos" / "v1").glob(f"*{suffix}"):
            name = str(path.relative_to(root))
            if name not in wanted:
                problems.append(f"{name}: generated file without a .proto source")
    return problems


def write() -> list[str]:
    """Regenerate every output in place; return the files written."""
    expected = expected_outputs(proto_sources())
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        for rel in expected:
            shutil.copyfile(Path(tmp) / rel, REPO_ROOT / rel)
    return [str(p) for p in expected]


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m protos.codegen", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the generated code is out of date"
    )
    ns = parser.parse_args(argv)
    if ns.check:
        problems = stale_files()
        for line in problems:
            print(f"stale: {line}", file=sys.stderr)
        if problems:
            print("run `python -m protos.codegen` and commit the result", file=sys.stderr)
            return 1
        print(f"generated code is up to date ({len(proto_sources())} sources)")
        return 0
    for path in write():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

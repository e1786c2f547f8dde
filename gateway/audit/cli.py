"""`zdr-gateway audit verify FILE…`: check the hash chains of an audit trail."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator

from gateway.audit.hashchain import verify


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="work with the audit trail")
    actions = audit.add_subparsers(dest="audit_command", required=True)
    v = actions.add_parser(
        "verify",
        help="check the hash chains of audit files and report the first break",
        description="Files are read as one trail, in the order given (rotated files: "
        "oldest first). Exit status: 0 intact, 1 break found, 2 file unreadable.",
    )
    v.add_argument("files", nargs="+", metavar="FILE", help="audit file (JSON lines), - = stdin")
    v.add_argument(
        "--key-env",
        metavar="VAR",
        help="environment variable holding audit.chain_key (keyed chains)",
    )
    v.add_argument(
        "--mixed",
        action="store_true",
        help="skip non-audit JSON lines (a captured stdout with log lines in it)",
    )
    v.add_argument(
        "--partial",
        action="store_true",
        help="the trail continues an earlier file that is not given: chains may start mid-way",
    )
    v.set_defaults(func=_verify)


class _Lines:
    """The lines of several files as one stream, remembering where each came from."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.bounds: list[tuple[int, str]] = []  # (first global line number, file)

    def __iter__(self) -> Iterator[str]:
        n = 0
        for name in self.names:
            self.bounds.append((n + 1, name))
            if name == "-":
                stream = sys.stdin
                yield from self._count(stream)
                n += self._last
                continue
            with open(name, encoding="utf-8", errors="replace") as f:
                yield from self._count(f)
            n += self._last

    def _count(self, stream: Iterator[str]) -> Iterator[str]:
        self._last = 0
        for line in stream:
            self._last += 1
            yield line

    def where(self, line: int) -> str:
        first, name = max((b for b in self.bounds if b[0] <= line), default=(1, self.names[0]))
        return f"{name}: line {line - first + 1}"


def _verify(args: argparse.Namespace) -> int:
    key: bytes | None = None
    if args.key_env:
        value = os.environ.get(args.key_env)
        if not value:
            print(f"audit verify: environment variable {args.key_env} is not set", file=sys.stderr)
            return 2
        key = value.encode()
    lines = _Lines(args.files)
    try:
        report = verify(lines, key, mixed=args.mixed, partial=args.partial)
    except OSError as exc:
        print(f"audit verify: cannot read {exc.filename} ({exc.strerror})", file=sys.stderr)
        return 2
    if not report.ok:
        assert report.line is not None
        print(f"{lines.where(report.line)}: {report.problem}")
        print(f"{report.events} event(s) verified before the break")
        return 1
    print(f"OK: {report.events} event(s) in {report.chains} chain(s)")
    for chain, seq in report.partial:
        print(f"note: chain {chain} starts in an earlier file (first event here: seq {seq})")
    return 0

"""`zdr-gateway audit verify FILE`: check an audit file's hash chain."""

from __future__ import annotations

import argparse
import os
import sys

from gateway.audit.chain import verify


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="work with the audit trail")
    actions = audit.add_subparsers(dest="audit_command", required=True)
    v = actions.add_parser(
        "verify",
        help="check the hash chain of an audit file and report the first break",
        description="Exit status: 0 chain intact, 1 break found, 2 file unreadable.",
    )
    v.add_argument("file", help="audit file (JSON lines), or - for stdin")
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
    v.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    key: bytes | None = None
    if args.key_env:
        value = os.environ.get(args.key_env)
        if not value:
            print(f"audit verify: environment variable {args.key_env} is not set", file=sys.stderr)
            return 2
        key = value.encode()
    try:
        if args.file == "-":
            report = verify(sys.stdin, key, mixed=args.mixed)
        else:
            with open(args.file, encoding="utf-8", errors="replace") as f:
                report = verify(f, key, mixed=args.mixed)
    except OSError as exc:
        print(f"audit verify: {args.file}: cannot read ({exc.strerror})", file=sys.stderr)
        return 2
    if not report.ok:
        print(f"{args.file}: line {report.line}: {report.problem}")
        print(f"{args.file}: {report.events} event(s) verified before the break")
        return 1
    note = ""
    if report.first_seq is not None:
        note = f"; starts mid-chain at seq {report.first_seq} (compare with the previous file)"
    print(
        f"{args.file}: OK: {report.events} event(s), {report.segments} chain segment(s), "
        f"last hash {report.last_hash}{note}"
    )
    return 0

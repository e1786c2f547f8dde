"""`zdr-gateway audit verify|export|new-key`: check, read and key the audit trail.

`verify DIR` checks an audit directory (encrypted segments, see verifydir.py);
`verify FILE…` checks plaintext JSON lines (a captured stdout). Keys: `--key-env
KID=VAR` / `--key-file KID=PATH` (repeatable) or `--config FILE` (the gateway's
own `audit.keys` and `audit.chain_key`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator

from gateway.audit.crypto import AuditKey, BadKey, Keyring, new_key, parse_key
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
    v.add_argument(
        "files",
        nargs="+",
        metavar="DIR|FILE",
        help="an audit directory (sink: file), or JSON-lines files (- = stdin)",
    )
    _key_options(v)
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
    e = actions.add_parser(
        "export",
        help="decrypt an audit directory to JSON lines on stdout (for a SIEM)",
        description="Every record that authenticates, streams and segments in order, one "
        "JSON event per line on stdout; problems on stderr. Exit status: 0 intact, 1 break "
        "found, 2 a key missing or wrong (nothing from its segments is printed).",
    )
    e.add_argument("dir", metavar="DIR", help="the audit directory (audit.dir)")
    _key_options(e)
    e.set_defaults(func=_export)
    k = actions.add_parser("new-key", help="print a new random AES-256 key (base64) for audit.keys")
    k.set_defaults(func=_new_key)


def _new_key(args: argparse.Namespace) -> int:
    print(new_key())
    return 0


def _key_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--key-env",
        metavar="KID=VAR",
        action="append",
        default=[],
        help="the AES key of key id KID is in environment variable VAR (repeat for old "
        "keys). Without KID= (just VAR): the HMAC key of keyed chains (audit.chain_key)",
    )
    p.add_argument(
        "--key-file",
        metavar="KID=PATH",
        action="append",
        default=[],
        help="the AES key of key id KID is in file PATH",
    )
    p.add_argument("--chain-key-env", metavar="VAR", help="audit.chain_key is in VAR")
    p.add_argument(
        "--config", metavar="FILE", help="take audit.keys and audit.chain_key from this config"
    )


class KeyProblem(Exception):
    pass


def _keys(args: argparse.Namespace) -> tuple[Keyring, bytes | None]:
    keys: list[AuditKey] = []
    chain_env = args.chain_key_env
    chain: bytes | None = None
    if args.config:
        from gateway import config as config_mod
        from gateway.audit.trail import keyring

        try:
            cfg = config_mod.load(args.config)
            keys.extend(keyring(cfg.audit).keys.values())
        except config_mod.ConfigError as exc:
            raise KeyProblem(str(exc)) from None
        chain = cfg.audit.chain_key.encode() if cfg.audit.chain_key else None
    for spec in args.key_env:
        if "=" not in spec:
            chain_env = spec  # the form before encrypted segments: the chain key
            continue
        kid, var = spec.split("=", 1)
        value = os.environ.get(var)
        if not value:
            raise KeyProblem(f"environment variable {var} is not set")
        keys.append(_key(kid, value, f"environment variable {var}"))
    for spec in args.key_file:
        kid, sep, path = spec.partition("=")
        if not sep:
            raise KeyProblem(f"--key-file wants KID=PATH, got {spec!r}")
        try:
            with open(path, encoding="utf-8") as f:
                keys.append(_key(kid, f.read(), f"file {path}"))
        except OSError as exc:
            raise KeyProblem(f"cannot read {path} ({exc.strerror})") from None
    if chain_env:
        value = os.environ.get(chain_env)
        if not value:
            raise KeyProblem(f"environment variable {chain_env} is not set")
        chain = value.encode()
    return Keyring(keys), chain


def _key(kid: str, value: str, where: str) -> AuditKey:
    try:
        return AuditKey.of(kid, parse_key(value))
    except BadKey as exc:
        raise KeyProblem(f"{where} (key id {kid}): {exc}") from None


def _dir(args: argparse.Namespace, directory: str, *, export: bool) -> int:
    from gateway.audit.verifydir import verify_dir

    try:
        keys, chain = _keys(args)
    except KeyProblem as exc:
        print(f"audit: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout.buffer

    def emit(plain: bytes) -> None:
        out.write(plain + b"\n")  # ZDR-OK: export: metadata-only events, to the operator

    try:
        result = verify_dir(directory, keys, chain, emit if export else None)
    except OSError as exc:
        print(f"audit: cannot read {exc.filename} ({exc.strerror})", file=sys.stderr)
        return 2
    report = sys.stderr if export else sys.stdout
    for finding in result.findings:
        print(finding, file=report)
    summary = (
        f"{result.events} event(s) in {result.segments} segment(s) of {result.streams} "
        f"stream(s), {result.tombstones} expired (tombstones)"
    )
    out.flush()
    if result.key_problem:
        print(f"audit: a key is missing or wrong; {summary}", file=sys.stderr)
        return 2
    if not result.ok:
        print(f"BROKEN: {summary}", file=report)
        return 1
    print(f"OK: {summary}", file=report)
    return 0


def _export(args: argparse.Namespace) -> int:
    return _dir(args, args.dir, export=True)


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
    if len(args.files) == 1 and os.path.isdir(args.files[0]):
        return _dir(args, args.files[0], export=False)
    try:
        _, key = _keys(args)
    except KeyProblem as exc:
        print(f"audit verify: {exc}", file=sys.stderr)
        return 2
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

"""The `zdr-gateway` command: serve, demo, check-config, keys, audit."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from gateway import __version__
from gateway import config as config_mod
from gateway.audit import cli as audit_cli
from gateway.errors import StartupError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="zdr-gateway",
        description="Zero Data Retention gateway for model APIs.",
    )
    parser.add_argument("--version", action="version", version=f"zdr-gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", required=True, metavar="FILE", help="YAML config file")
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes sharing the port (default: server.workers; one per core)",
    )
    serve.set_defaults(func=_serve)

    demo = sub.add_parser("demo", help="run the whole path locally: stand-in API, gateway, client")
    demo.set_defaults(func=_demo)

    check = sub.add_parser("check-config", help="validate a config file and explain each error")
    check.add_argument("file", metavar="FILE")
    check.set_defaults(func=_check_config)

    from gateway.auth import cli as keys_cli

    keys_cli.register(sub)
    audit_cli.register(sub)

    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a command-line tool never fails without saying why
        print(f"zdr-gateway {args.command}: {failure(exc)}", file=sys.stderr)
        return 1
    return result


def failure(exc: BaseException) -> str:
    """One line for an error the command could not handle: the gateway's own words and
    the exception class, never the exception's text (it may quote a body or a header)."""
    from gateway.auth.keyset import KeyLoadError
    from gateway.serve.harden import HardenError

    if isinstance(exc, StartupError | config_mod.ConfigError | KeyLoadError | HardenError):
        return str(exc)  # written by the gateway, from the operator's config only
    if isinstance(exc, OSError) and exc.errno is not None:
        # SECURITY: os.strerror, not str(exc): the OS's words for the errno, no payload.
        return f"{os.strerror(exc.errno)} ({type(exc).__name__})"
    return f"unexpected error ({type(exc).__name__}); nothing was written"


def _load(path: str) -> config_mod.Config | None:
    try:
        return config_mod.load(path)
    except config_mod.ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


def _serve(args: argparse.Namespace) -> int:
    from gateway.observe import logs
    from gateway.serve import harden, server

    cfg = _load(args.config)
    if cfg is None:
        return 2
    if args.workers is not None:
        cfg = _with_workers(cfg, args.workers, args.config)
        if cfg is None:
            return 2
    logs.configure(cfg.logging.level)
    try:
        harden.apply(cfg.harden)
    except harden.HardenError as exc:
        print(f"zdr-gateway: {exc}", file=sys.stderr)
        return 2
    try:
        # Files named by the config (TLS certificate, key, CA bundles) are read at start;
        # read them here first, so a bad one is named once, before any worker starts.
        _check_tls_files(cfg)
        if cfg.server.workers > 1:
            from gateway.serve import workers

            return workers.supervise(cfg, config_path=args.config)
        server.run(server.serve(cfg, config_path=args.config))
    except config_mod.ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


def _upstream_summary(u: config_mod.UpstreamSettings) -> str:
    """`anthropic (anthropic)`, or with its pool's target names (never URLs or keys)."""
    if not u.targets:
        return f"{u.name} ({u.provider})"
    return f"{u.name} ({u.provider}; targets {' '.join(t.name for t in u.targets)})"


def _check_tls_files(cfg: config_mod.Config) -> None:
    from gateway.serve import tls

    if cfg.server.tls.enabled:
        tls.read_material(cfg.server.tls)
    for i, upstream in enumerate(cfg.upstreams):
        if upstream.ca_file:
            tls.client_context(upstream.ca_file, option=f"upstreams[{i}].ca_file")
        for j, target in enumerate(upstream.targets):
            if target.ca_file:
                tls.client_context(target.ca_file, option=f"upstreams[{i}].targets[{j}].ca_file")


def _with_workers(cfg: config_mod.Config, n: int, source: str) -> config_mod.Config | None:
    """The config with `server.workers` from the command line, validated like the file."""
    data = cfg.model_dump()
    data["server"]["workers"] = n
    try:
        return config_mod.Config.model_validate(data)
    except ValidationError as exc:
        problems = [config_mod.describe(e) for e in exc.errors()]
        print(config_mod.ConfigError(f"{source} with --workers {n}", problems), file=sys.stderr)
        return None


def _demo(args: argparse.Namespace) -> int:
    from gateway.demo import run

    return run.main()


def _check_config(args: argparse.Namespace) -> int:
    cfg = _load(args.file)
    if cfg is None:
        return 1
    names = ", ".join(_upstream_summary(u) for u in cfg.upstreams)
    tls = "TLS" if cfg.server.tls.enabled else "PLAINTEXT"
    if cfg.server.tls.enabled and cfg.server.tls.client_ca_file:
        tls = "mTLS"
    print(f"{args.file}: ok")
    print(f"  listener  {cfg.server.host}:{cfg.server.port} ({tls})")
    print(f"  admin     {cfg.admin.host}:{cfg.admin.port}")
    print(f"  upstreams {names}")
    exempt = sum(len(t.allow) for t in cfg.policy.teams.values())
    print(f"  policy    unlisted betas: {cfg.policy.betas.unlisted}; team exemptions: {exempt}")
    print(f"  audit     {cfg.audit.sink}{' ' + cfg.audit.dir if cfg.audit.dir else ''}")
    print(f"  hash      {cfg.digest()}")
    return 0

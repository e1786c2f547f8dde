"""The `zdr-gateway` command: serve, demo, check-config, keys, audit."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gateway import __version__
from gateway import config as config_mod


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="zdr-gateway",
        description="Zero Data Retention gateway for model APIs.",
    )
    parser.add_argument("--version", action="version", version=f"zdr-gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", required=True, metavar="FILE", help="YAML config file")
    serve.set_defaults(func=_serve)

    demo = sub.add_parser("demo", help="run the whole path locally: stand-in API, gateway, client")
    demo.set_defaults(func=_demo)

    check = sub.add_parser("check-config", help="validate a config file and explain each error")
    check.add_argument("file", metavar="FILE")
    check.set_defaults(func=_check_config)

    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


def _load(path: str) -> config_mod.Config | None:
    try:
        return config_mod.load(path)
    except config_mod.ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


def _serve(args: argparse.Namespace) -> int:
    from gateway import logs, server

    cfg = _load(args.config)
    if cfg is None:
        return 2
    logs.configure(cfg.logging.level)
    server.run(server.serve(cfg))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from gateway import demo

    return demo.main()


def _check_config(args: argparse.Namespace) -> int:
    cfg = _load(args.file)
    if cfg is None:
        return 1
    names = ", ".join(f"{u.name} ({u.provider})" for u in cfg.upstreams)
    tls = "TLS" if cfg.server.tls.enabled else "PLAINTEXT"
    if cfg.server.tls.enabled and cfg.server.tls.client_ca_file:
        tls = "mTLS"
    print(f"{args.file}: ok")
    print(f"  listener  {cfg.server.host}:{cfg.server.port} ({tls})")
    print(f"  admin     {cfg.admin.host}:{cfg.admin.port}")
    print(f"  upstreams {names}")
    print(f"  hash      {cfg.digest()}")
    return 0

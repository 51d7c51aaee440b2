#!/usr/bin/env python3
"""Render the cluster router's nginx server for backupctl: lain-cli's plain-HTTP requests to
``backupctl.<domain>`` forwarded, never redirected, to the API over HTTPS.

    # a public API with a custom domain (render_config.py --domain …): the domain's regional
    # target is the stack output RegionalDomainName
    python scripts/render_router.py --domain backupctl.lain.example \\
        --upstream https://d-abc123.execute-api.us-east-1.amazonaws.com \\
        --host-header backupctl.lain.example --resolver 10.0.0.2 > /etc/nginx/conf.d/backupctl.conf

    # a private API (render_config.py --private-api): through the VPC endpoint, naming the API
    # (its host: the stack output RestAPIHost)
    python scripts/render_router.py --domain backupctl.lain.example \\
        --upstream https://vpce-0abc-1def.execute-api.us-east-1.vpce.amazonaws.com \\
        --host-header a1b2c3d4e5.execute-api.us-east-1.amazonaws.com --path-prefix /live \\
        --resolver 10.0.0.2
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined

ROOT = Path(__file__).resolve().parent.parent


def render(domain: str, upstream: str, resolver: str, host_header: str = "", path_prefix: str = "",
           listen: str = "80", ca_file: str = "/etc/ssl/certs/ca-certificates.crt") -> str:
    parts = urlsplit(upstream)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError(f"--upstream must be scheme://host[:port], got {upstream!r}")
    jinja = Environment(loader=FileSystemLoader(ROOT / "scripts" / "templates"),
                        undefined=StrictUndefined, keep_trailing_newline=True)
    return jinja.get_template("nginx-router.conf.j2").render(
        domain=domain, upstream=f"{parts.scheme}://{parts.netloc}",
        host_header=host_header or parts.netloc, path_prefix=path_prefix, listen=listen,
        ca_file=ca_file, resolver=resolver)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domain", required=True, help="the name lain-cli uses: backupctl.<domain>")
    parser.add_argument("--upstream", required=True, help="https://host[:port] the router connects to")
    parser.add_argument("--resolver", required=True,
                        help="DNS server the router asks for the API's addresses (at request time)")
    parser.add_argument("--host-header", default="", help="Host (and TLS name) the API expects")
    parser.add_argument("--path-prefix", default="", help="the API Gateway stage, for raw or private "
                                                          "API URLs (/live); none for a custom domain")
    parser.add_argument("--listen", default="80")
    parser.add_argument("--ca-file", default="/etc/ssl/certs/ca-certificates.crt")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        sys.stdout.write(render(args.domain, args.upstream, args.resolver, args.host_header,
                                args.path_prefix, args.listen, args.ca_file))
    except ValueError as e:
        print(f"render_router: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

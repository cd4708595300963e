"""The ssehub command: serve, publish, subscribe (and chat, simulate-llm from the relay).

Every setting of ssehub.config.Settings is a serve flag (--history-size 500), an
environment variable (SSEHUB_HISTORY_SIZE) and a key of the TOML file (--config);
precedence: flag > environment > file > default. The client commands (publish, subscribe,
chat) find the hub with --url, else SSEHUB_URL, else http://127.0.0.1:8181.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from .cli_llm import register as register_llm_commands
from .config import ConfigError, Settings, load_settings
from .errors import SSEHubError

__all__ = ["main"]

DEFAULT_URL = "http://127.0.0.1:8181"
GIVE_UP_UNCONNECTED = 5  # failed connects before `subscribe` gives up if it never connected
# json.dumps(ensure_ascii=False) escapes C0 controls but not DEL and the C1 range, which
# some terminals obey (U+009B is CSI): escape them too, the line stays valid JSON
_C1 = re.compile("[\x7f-\x9f]")


def hub_url() -> str:
    """The hub URL the client commands use by default: SSEHUB_URL, else DEFAULT_URL."""
    return os.environ.get("SSEHUB_URL") or DEFAULT_URL


def json_line(value: object) -> str:
    return _C1.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(value, ensure_ascii=False))


def _serve_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML file with settings (also SSEHUB_CONFIG)")
    for f in fields(Settings):
        if f.name == "providers":
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            parser.add_argument(flag, dest=f.name, default=None, action=argparse.BooleanOptionalAction)
        else:
            parser.add_argument(flag, dest=f.name, default=None, metavar=f.name.upper(),
                                help=f"default: {f.default!r}" if f.name != "llm_api_key" else
                                "prefer SSEHUB_LLM_API_KEY: flags show up in process lists")


def _cmd_serve(args: argparse.Namespace) -> int:
    from .server import run

    flags = {f.name: getattr(args, f.name) for f in fields(Settings) if hasattr(args, f.name)}
    settings = load_settings(flags, config_file=args.config)
    if settings.workers > 1:
        from .workers import run_workers

        run_workers(settings)
    else:
        run(settings)
    return 0


def _cmd_publish(args: argparse.Namespace) -> int:
    from .client import publish

    data: Any = args.data
    if args.json:
        try:
            data = json.loads(args.data)
        except ValueError as exc:
            print(f"ssehub publish: --json given but DATA is not JSON: {exc}", file=sys.stderr)
            return 2
    ident = asyncio.run(publish(args.url, args.topic, data, event=args.event, token=args.token or None))
    print(ident)
    return 0


async def _subscribe(args: argparse.Namespace) -> None:
    from .client import Retrying, subscribe

    def retrying(info: Retrying) -> None:
        print(f"ssehub subscribe: {info.reason}; retrying in {info.delay:.1f} s"
              + (f" (failed attempts: {info.failures})" if info.failures else ""),
              file=sys.stderr, flush=True)

    if args.max_retries is None:  # give up early only if it never connected
        limit, keep = GIVE_UP_UNCONNECTED, True
    else:
        limit, keep = args.max_retries, False
    async for event in subscribe(args.url, args.topics, last_event_id=args.last_event_id,
                                 max_failures=limit, keep_trying_once_connected=keep,
                                 on_retry=retrying, token=args.token or None):
        line = {"event": event.event or "message", "data": event.data}
        if event.event != "gap":
            line["id"] = event.id or ""
        print(json_line(line), flush=True)


def _cmd_subscribe(args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_subscribe(args))
    return 0


def _cmd_token(args: argparse.Namespace) -> int:
    from .tokens import Verifier, mint, parse_ttl

    try:
        ttl = parse_ttl(args.ttl)
    except ValueError as exc:
        print(f"ssehub token: {exc}", file=sys.stderr)
        return 2
    settings = load_settings({}, config_file=args.config)
    token = mint(settings, publish=args.publish, subscribe=args.subscribe, ttl=ttl,
                 subject=args.sub, private_key=args.private_key)
    verifier = Verifier.from_settings(settings)
    if verifier is not None:  # a token this hub would refuse is no use: say so now
        try:
            verifier.verify(token)
        except SSEHubError as exc:
            print(f"ssehub token: the configured hub would refuse this token ({exc.message}): "
                  "does the private key match jwt_public_key?", file=sys.stderr)
            return 1
    print(token)
    return 0


def _add_token_flag(parser: argparse.ArgumentParser) -> None:
    """``--token`` (default: SSEHUB_TOKEN), sent as ``Authorization: Bearer``."""
    parser.add_argument("--token", default=os.environ.get("SSEHUB_TOKEN"),
                        help="JWT for a hub with auth on (default: SSEHUB_TOKEN; prefer the "
                             "variable: flags show up in process lists)")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ssehub", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the hub server (default 127.0.0.1:8181)")
    _serve_flags(serve)
    serve.set_defaults(func=_cmd_serve)

    pub = sub.add_parser("publish", help="publish one event")
    pub.add_argument("topic")
    pub.add_argument("data")
    pub.add_argument("--event", help="event name")
    pub.add_argument("--json", action="store_true", help="DATA is JSON, send it as a JSON value")
    pub.add_argument("--url", default=hub_url(), help=f"hub URL (default: SSEHUB_URL, else {DEFAULT_URL})")
    _add_token_flag(pub)
    pub.set_defaults(func=_cmd_publish)

    subs = sub.add_parser("subscribe", help="print events as JSON lines; resumes after drops")
    subs.add_argument("topics", nargs="+")
    subs.add_argument("--last-event-id", help="resume after this id ('earliest' for all history)")
    subs.add_argument("--url", default=hub_url(), help=f"hub URL (default: SSEHUB_URL, else {DEFAULT_URL})")
    subs.add_argument("--max-retries", type=_positive, metavar="N",
                      help="exit with status 1 after N failed connection attempts in a row "
                           f"(default: after {GIVE_UP_UNCONNECTED} if it never connected; "
                           "once connected, it keeps trying)")
    _add_token_flag(subs)
    subs.set_defaults(func=_cmd_subscribe)

    tok = sub.add_parser("token", help="mint a JWT with the configured key (for development and scripts)",
                         description="Mint a JWT signed with jwt_secret (HS256), or with --private-key "
                                     "for RS256/ES256, and print it. Patterns: '*' matches any run of "
                                     "characters, '/' included.")
    tok.add_argument("--publish", nargs="+", action="extend", default=[], metavar="PATTERN",
                     help="topic patterns the token may publish to")
    tok.add_argument("--subscribe", nargs="+", action="extend", default=[], metavar="PATTERN",
                     help="topic patterns the token may subscribe to")
    tok.add_argument("--ttl", default="1h", help="lifetime: 30s, 15m, 1h, 7d or seconds (default 1h)")
    tok.add_argument("--sub", help="subject (sub claim): who the token is for")
    tok.add_argument("--private-key", metavar="PEM_OR_@FILE",
                     help="RS256/ES256: the private key to sign with (PEM text or @path)")
    tok.add_argument("--config", help="TOML file with settings (also SSEHUB_CONFIG)")
    tok.set_defaults(func=_cmd_token)

    register_llm_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"ssehub: configuration error: {exc.message}", file=sys.stderr)
        return 2
    except SSEHubError as exc:
        print(f"ssehub: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return 1
    return code


def _quiet_stdout() -> None:
    """The reader of our stdout went away (``ssehub subscribe … | head -3``): point stdout
    at devnull so the interpreter's final flush does not print a second error (Python's
    documented recipe, "Note on SIGPIPE" in the signal module)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())

"""The ``netxray serve`` command: the run viewer (and playground) in the browser.

Registered by :mod:`netxray.cli`; building the parser imports nothing heavy, and FastAPI and
uvicorn are imported only when the command runs (missing: exit 2 naming the extra to install).
Binds 127.0.0.1 unless ``--host`` says otherwise; Ctrl-C stops the server and exits 0.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
import threading
import webbrowser
from pathlib import Path
from typing import Any

from netxray.cli_options import add_debug

__all__ = ["add_serve_command", "cmd_serve"]

DEFAULT_RUNS = "runs"


def add_serve_command(sub: Any) -> None:
    """Add ``serve`` to the subparsers ``sub`` (with the shared ``--debug``)."""
    serve = sub.add_parser(
        "serve", help="the run viewer (and playground) in the browser: a local web server",
        epilog="Needs the web extra: pip install 'netxray[web]'. Exit codes: 0 stopped "
               "(Ctrl-C); 2 bad input (e.g. the port is in use, RUNS_DIR is not a folder).")
    serve.add_argument("runs_dir", metavar="RUNS_DIR", nargs="?", default=None,
                       help=f"the folder of runs to show (default: {DEFAULT_RUNS}, where "
                            "`netxray train` writes); read, never written")
    serve.add_argument("--host", default="127.0.0.1",
                       help="the address to listen on (default: 127.0.0.1, this machine only; "
                            "another address lets anyone who can reach it read your runs)")
    serve.add_argument("--port", type=_port, default=8000,
                       help="the port (default: 8000; 0: any free port)")
    serve.add_argument("--no-open", action="store_true", help="do not open a browser")
    add_debug(serve)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535, got {value}")
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    from netxray.cli import InputError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise InputError(f"--host {host}: not an address of this machine ({e})") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as e:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port} ({e.strerror or e}); is another "
                         "server using it? Pass another --port (0: any free port)") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def cmd_serve(args: argparse.Namespace) -> int:
    """``netxray serve [RUNS_DIR]``: serve until Ctrl-C."""
    from netxray.cli import OK, InputError

    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as e:
        raise InputError(f"netxray serve needs FastAPI and uvicorn ({e.name} is missing): "
                         "pip install 'netxray[web]'") from None
    given = args.runs_dir is not None
    runs = Path(args.runs_dir if given else DEFAULT_RUNS)
    if runs.exists() and not runs.is_dir():
        raise InputError(f"RUNS_DIR {runs} is a file, not a folder; give the folder of runs "
                         "(a run's .sqlite file sits in it)")
    if given and not runs.exists():
        raise InputError(f"RUNS_DIR {runs} does not exist; record a run into it with "
                         f"`netxray train --run {runs}/NAME`")
    import torch

    from netxray.serve.app import LOCAL_HOSTS, create_app
    from netxray.serve.settings import Limits

    # One intra-op thread: the playground's networks are so small that a second thread only
    # waits on the first (2 cores under load: 26 ms a frame with one thread, 360 ms with
    # two), and sessions train side by side. This process serves and does nothing else.
    torch.set_num_threads(1)

    local = _is_loopback(args.host)
    hosts = (*LOCAL_HOSTS, args.host) if local else ("*",)  # e.g. 127.0.0.2 is loopback too
    app = create_app(runs, Limits(), allowed_hosts=hosts)
    sock = _bind(args.host, args.port)
    port = sock.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown}:{port}/" + ("runs/" if given else "")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    print(f"netxray serve: {url} (runs: {runs.resolve()}); Ctrl-C to stop", flush=True)
    if not local:
        print(f"netxray serve: warning: listening on {args.host}: anyone who can reach it can "
              "read these runs", file=sys.stderr)
    if not args.no_open:
        threading.Thread(target=_open_when_started, args=(server, url), daemon=True).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return OK


def _open_when_started(server: Any, url: str) -> None:
    import time

    for _ in range(100):
        if server.started:
            webbrowser.open(url)
            return
        time.sleep(0.05)

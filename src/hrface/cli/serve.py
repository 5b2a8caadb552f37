"""``hrface serve``: the HTTP API and web page (:mod:`hrface.serving`) on uvicorn; needs ``hrface[serve]``.

fastapi and uvicorn are imported only when the command runs, so ``hrface --help`` stays light.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import math
import socket
import sys

from ..errors import ConfigError
from ..extras import require
from ..serving.options import DEFAULT_MAX_FACES, DEFAULT_MAX_SIZE_CAP, DEFAULT_MIN_THRESHOLD
from .detect import add_model_arguments

log = logging.getLogger("hrface")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "serve",
        help="serve the models over HTTP: a JSON API (POST /v1/detect) and a web page",
        description="Load the models once and serve POST /v1/detect (an image as multipart field 'image' or as "
        "the raw body; the answer is hrface detect's JSON record), GET /health, GET /v1/models, the API docs at "
        "/docs and a web page at /.  Needs the hrface[serve] extra.  No authentication: it listens on "
        "127.0.0.1 unless told otherwise.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0: any free port)")
    parser.add_argument("--workers", type=int, default=1, help="inference threads: images analysed at once (default 1)")
    parser.add_argument(
        "--max-upload-mb", type=float, default=20.0, help="largest accepted upload in MiB (default 20; 413 above)"
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="answer 503 to a request not done in S s (default 30)"
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        default=32,
        help="requests accepted at once, analysed or waiting (default 32; 503 'busy' above)",
    )
    parser.add_argument(
        "--max-size-cap",
        type=int,
        default=DEFAULT_MAX_SIZE_CAP,
        metavar="PX",
        help=f"largest detector input side a request may ask for: max_size none or above PX is lowered to PX "
        f"(default {DEFAULT_MAX_SIZE_CAP})",
    )
    parser.add_argument(
        "--min-threshold",
        type=float,
        default=DEFAULT_MIN_THRESHOLD,
        metavar="SCORE",
        help=f"lowest face score a request may ask for; lower thresholds are raised to it (default "
        f"{DEFAULT_MIN_THRESHOLD})",
    )
    parser.add_argument(
        "--max-faces",
        type=int,
        default=DEFAULT_MAX_FACES,
        metavar="N",
        help=f"faces per image that get landmarks and are returned, the best by score (default {DEFAULT_MAX_FACES})",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        metavar="N",
        help="largest decoded image, width x height (default $HRFACE_MAX_PIXELS or 150000000; 413 above)",
    )
    add_model_arguments(parser)  # --threshold, --max-size: the defaults of requests that do not set them
    parser.add_argument("--quiet", "-q", action="store_true", help="no access log")
    parser.set_defaults(run=run)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (refusals such as a port in use become one-line errors, exit 2)."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: must be 0 to 65535")
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return socket.create_server((host, port), family=family, backlog=256)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: not a known address ({exc.strerror}); use 127.0.0.1") from None
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port or --host") from None


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check_limits(args: argparse.Namespace) -> None:
    """One-line errors, naming the option, for limits that cannot work: not a finite number above 0, fewer than
    one worker, a queue shorter than the workers, caps out of range or below the server's own settings."""
    for option, value, default in (("--timeout", args.timeout, 30), ("--max-upload-mb", args.max_upload_mb, 20)):
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{option} {value:g}: must be a finite number above 0 (default {default})")
    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: must be at least 1")
    if args.max_queue < args.workers:
        raise ConfigError(f"--max-queue {args.max_queue}: must be at least --workers ({args.workers})")
    cap = args.max_size_cap
    if cap < 32:
        raise ConfigError(f"--max-size-cap {cap}: must be at least 32 pixels (default {DEFAULT_MAX_SIZE_CAP})")
    if not 0.0 <= args.min_threshold <= 1.0:
        raise ConfigError(f"--min-threshold {args.min_threshold:g}: must be 0 to 1 (default {DEFAULT_MIN_THRESHOLD})")
    if args.max_faces < 1:
        raise ConfigError(f"--max-faces {args.max_faces}: must be at least 1 (default {DEFAULT_MAX_FACES})")
    if args.max_pixels is not None and args.max_pixels < 1:
        raise ConfigError(f"--max-pixels {args.max_pixels}: must be at least 1 (default 150000000)")
    if args.max_size is None or (isinstance(args.max_size, int) and args.max_size > cap):
        shown = "none" if args.max_size is None else args.max_size
        raise ConfigError(f"--max-size {shown}: above --max-size-cap {cap}; give at most {cap}, or raise the cap")
    if isinstance(args.threshold, float) and args.threshold < args.min_threshold:
        raise ConfigError(
            f"--threshold {args.threshold:g}: below --min-threshold {args.min_threshold:g}; raise it, "
            "or lower --min-threshold"
        )


def run(args: argparse.Namespace) -> int:
    """Check the extra and the options, load the models (errors: one line, exit 2), bind, then serve until
    Ctrl-C or SIGTERM (exit 0)."""
    check_limits(args)
    require("fastapi", "serve", "hrface serve")
    require("uvicorn", "serve", "hrface serve")
    require("python_multipart", "serve", "hrface serve")
    import uvicorn

    from ..serving import create_app
    from ..serving.options import Limits, ServeOptions, default_threads

    landmarker = None if args.landmarker.lower() == "none" else args.landmarker
    options = ServeOptions(
        args.detector,
        landmarker,
        args.threshold,
        args.nms_iou,
        args.max_size,
        args.device,
        args.backend,
        default_threads(args.workers, args.threads),
        args.min_face,
    )
    caps = {"max_size_cap": args.max_size_cap, "min_threshold": args.min_threshold, "max_faces": args.max_faces}
    Limits(args.max_upload_mb, args.timeout, args.workers, args.max_queue, args.max_pixels, **caps)  # before loading
    sock = bind(args.host, args.port)  # a port in use is found before the models load
    analyzer = options.build()
    app = create_app(
        analyzer,
        max_upload_mb=args.max_upload_mb,
        timeout_s=args.timeout,
        workers=args.workers,
        max_queue=args.max_queue,
        max_pixels=args.max_pixels,
        **caps,
        model_names=options.model_names(),
    )
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    if not is_loopback(args.host):
        log.warning(f"listening on {args.host}: anyone who can reach this port can use the server (no authentication)")
    print(f"hrface: serving on http://{shown}:{port}/ (API docs at /docs); Ctrl-C to stop", file=sys.stderr, flush=True)
    config = uvicorn.Config(
        app, log_level="info", access_log=not args.quiet, timeout_graceful_shutdown=max(5, int(args.timeout))
    )
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C once it has shut down: a normal stop
        uvicorn.Server(config).run(sockets=[sock])
    print("hrface: server stopped", file=sys.stderr)
    return 0

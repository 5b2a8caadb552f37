"""Load test of a running ``hrface serve``: requests/s, latency percentiles and errors per number of clients.

    python -m hrface.benchmark.serve_load --url http://127.0.0.1:8000 --image PHOTO \\
        --requests 50 --concurrency 1 4 8 --timeout 60 [--json OUT.json]

Each level sends ``--requests`` uploads of ``--image`` (multipart field ``image``) from N client threads, each
with its own keep-alive connection, after ``--warmup`` untimed ones.  Loopback servers only (it refuses any
other host); bounded in count (at most 10,000 requests a level) and in time (``--timeout`` seconds for the
whole run: past it no request is started, and each request gets what is left).  Standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

MAX_REQUESTS = 10_000


@dataclass
class LevelResult:
    """What one concurrency level measured (latencies of the answered requests, in ms)."""

    concurrency: int
    requests: int
    ok: int
    errors: dict[str, int]
    seconds: float
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    faces: list[int]


def loopback_target(url: str) -> tuple[str, int]:
    """``(host, port)`` of an ``http://`` URL whose host is a loopback address; ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"{url}: expected http://HOST:PORT")
    addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 80)}
    if not addresses or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise ValueError(f"{url}: not a loopback address; this load test only targets a server on this machine")
    return parts.hostname, parts.port or 80


def multipart(image: Path) -> tuple[bytes, str]:
    """The body and content type of a multipart upload of ``image`` as field ``image``."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{image.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + image.read_bytes() + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def run_level(host: str, port: int, body: bytes, content_type: str, count: int, concurrency: int, deadline: float):
    """Send ``count`` requests from ``concurrency`` threads; stop starting new ones at ``deadline``."""
    lock = threading.Lock()
    next_index = [0]
    latencies: list[float] = []
    errors: Counter = Counter()
    faces: Counter = Counter()

    def client() -> None:
        conn: http.client.HTTPConnection | None = None
        while True:
            with lock:
                if next_index[0] >= count or time.monotonic() >= deadline:
                    break
                next_index[0] += 1
            left = max(0.1, deadline - time.monotonic())
            start = time.perf_counter()
            try:
                conn = conn or http.client.HTTPConnection(host, port, timeout=left)
                conn.timeout = left
                conn.request("POST", "/v1/detect", body, {"Content-Type": content_type})
                response = conn.getresponse()
                payload = response.read()
                elapsed = time.perf_counter() - start
                with lock:
                    if response.status == 200:
                        latencies.append(elapsed * 1000)
                        faces[len(json.loads(payload)["faces"])] += 1
                    else:
                        errors[str(response.status)] += 1
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    errors[type(exc).__name__] += 1
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99]) if latencies else (float("nan"),) * 3
    return LevelResult(
        concurrency,
        next_index[0],
        len(latencies),
        dict(errors),
        round(seconds, 3),
        round(len(latencies) / seconds, 2) if seconds > 0 else 0.0,
        round(float(p50), 1),
        round(float(p95), 1),
        round(float(p99), 1),
        sorted(faces),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000 (loopback only)")
    parser.add_argument("--image", type=Path, required=True, help="the picture every request uploads")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per level (default 50)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8], help="client counts (default 1 4 8)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed requests first (default 2)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds for the whole run (default 60)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= MAX_REQUESTS or min(args.concurrency) < 1 or max(args.concurrency) > 64:
        parser.error(f"--requests must be 1 to {MAX_REQUESTS}, --concurrency 1 to 64")
    try:
        host, port = loopback_target(args.url)
        body, content_type = multipart(args.image)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    deadline = time.monotonic() + args.timeout
    run_level(host, port, body, content_type, args.warmup, 1, deadline)
    results = []
    print("clients  requests  ok  errors  req/s  p50 ms  p95 ms  p99 ms  faces")
    for concurrency in args.concurrency:
        if time.monotonic() >= deadline:
            print(f"{concurrency:7d}  not run: --timeout {args.timeout:g} s reached")
            continue
        r = run_level(host, port, body, content_type, args.requests, concurrency, deadline)
        results.append(r)
        errors = ",".join(f"{k}:{v}" for k, v in r.errors.items()) or "0"
        print(
            f"{r.concurrency:7d}  {r.requests:8d}  {r.ok:2d}  {errors:>6}  {r.requests_per_s:5.2f}  "
            f"{r.p50_ms:6.0f}  {r.p95_ms:6.0f}  {r.p99_ms:6.0f}  {r.faces}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
    return 1 if any(r.errors or r.ok < args.requests for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Load test of a running ``hrface serve``: requests/s, latency percentiles and errors per number of clients.

    python benchmarks/serve_load.py --url http://127.0.0.1:8000 --image PHOTO \\
        --requests 50 --concurrency 1 4 8 --timeout 60 [--json OUT.json]

Each level sends ``--requests`` uploads of ``--image`` (multipart field ``image``) from N client threads, each
with its own keep-alive connection, after ``--warmup`` untimed ones.

With ``--mix``, one level of ``--concurrency`` clients (e.g. 50, each pausing about ``--pause`` s between its
requests) sends ``--requests`` requests of which every ``--heavy-every``-th is heavy, in turn: a
``--huge-side``-px grey PNG square at ``max_size=none``, and the photo at ``threshold=0&max_size=none``
(``--heavy-every 0``: none, a baseline); it reports the normal requests' latency, what the heavy ones got, and with
``--server-pid`` the server's resident memory (VmRSS) before, at its peak (sampled every 0.1 s) and after.

Loopback servers only (it refuses any other host); bounded in count (at most 10,000 requests a level) and in
time (``--timeout`` seconds for the whole run: past it no request is started, and each request gets what is
left; ``--mix`` then waits at most 30 s more for the server to finish).  Standard library, NumPy, OpenCV.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import ipaddress
import json
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
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


@dataclass(frozen=True)
class Job:
    """One request to send: its kind (for the report), path with query, body and content type."""

    kind: str
    path: str
    body: bytes
    content_type: str


@dataclass(frozen=True)
class Outcome:
    """One answer: its job's kind, the HTTP status (or the exception's name), ms, faces (200 only)."""

    kind: str
    status: str
    ms: float
    faces: int | None


def loopback_target(url: str) -> tuple[str, int]:
    """``(host, port)`` of an ``http://`` URL whose host is a loopback address; ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"{url}: expected http://HOST:PORT")
    addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 80)}
    if not addresses or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise ValueError(f"{url}: not a loopback address; this load test only targets a server on this machine")
    return parts.hostname, parts.port or 80


def multipart(image: Path | bytes, name: str = "") -> tuple[bytes, str]:
    """The body and content type of a multipart upload of ``image`` (a file, or bytes named ``name``)."""
    data, name = (image.read_bytes(), image.name) if isinstance(image, Path) else (image, name)
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def send_all(
    host: str, port: int, job: Callable[[int], Job], count: int, concurrency: int, deadline: float, pause: float = 0.0
) -> tuple[list[Outcome], int, float]:
    """Send jobs ``job(0) … job(count - 1)`` from ``concurrency`` threads (one keep-alive connection each); with
    ``pause``, each thread starts after 0–1 × ``pause`` s and waits 0.5–1.5 × ``pause`` s (at random) after each
    answer; stop starting new ones at ``deadline``.
    Returns the outcomes, the number started and the seconds taken."""
    lock = threading.Lock()
    started = [0]
    outcomes: list[Outcome] = []

    def client(seed: int) -> None:
        conn: http.client.HTTPConnection | None = None
        rng = np.random.default_rng(seed)
        if pause > 0:  # the clients start spread over one pause, not all at once
            time.sleep(min(pause * rng.uniform(0, 1), max(0.0, deadline - time.monotonic())))
        while True:
            with lock:
                if started[0] >= count or time.monotonic() >= deadline:
                    break
                todo = job(started[0])
                started[0] += 1
            left = max(0.1, deadline - time.monotonic())
            start = time.perf_counter()
            try:
                conn = conn or http.client.HTTPConnection(host, port, timeout=left)
                conn.timeout = left
                conn.request("POST", todo.path, todo.body, {"Content-Type": todo.content_type})
                response = conn.getresponse()
                payload = response.read()
                ms = (time.perf_counter() - start) * 1000
                faces = len(json.loads(payload)["faces"]) if response.status == 200 else None
                outcome = Outcome(todo.kind, str(response.status), ms, faces)
            except (OSError, http.client.HTTPException) as exc:
                outcome = Outcome(todo.kind, type(exc).__name__, (time.perf_counter() - start) * 1000, None)
                if conn is not None:
                    conn.close()
                conn = None
            with lock:
                outcomes.append(outcome)
            if pause > 0:  # a new connection after the pause: the server closes idle ones (uvicorn: after 5 s)
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(min(pause * rng.uniform(0.5, 1.5), max(0.0, deadline - time.monotonic())))
        if conn is not None:
            conn.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(seed,), daemon=True) for seed in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes, started[0], time.perf_counter() - start


def percentiles(ms: list[float], qs: tuple[int, ...] = (50, 95, 99)) -> list[float]:
    return [round(float(v), 1) for v in np.percentile(ms, qs)] if ms else [float("nan")] * len(qs)


def run_level(host: str, port: int, body: bytes, content_type: str, count: int, concurrency: int, deadline: float):
    """Send ``count`` uploads of one body from ``concurrency`` threads; stop starting new ones at ``deadline``."""
    job = Job("normal", "/v1/detect", body, content_type)
    outcomes, started, seconds = send_all(host, port, lambda _: job, count, concurrency, deadline)
    answered = [o for o in outcomes if o.status == "200"]
    p50, p95, p99 = percentiles([o.ms for o in answered])
    return LevelResult(
        concurrency,
        started,
        len(answered),
        dict(Counter(o.status for o in outcomes if o.status != "200")),
        round(seconds, 3),
        round(len(answered) / seconds, 2) if seconds > 0 else 0.0,
        p50,
        p95,
        p99,
        sorted({o.faces for o in answered if o.faces is not None}),
    )


class RssMonitor:
    """The resident memory of a process on this machine (``/proc/PID/status``), sampled in a thread."""

    def __init__(self, pid: int) -> None:
        self.status = Path(f"/proc/{pid}/status")
        self.peak = self.read()["VmRSS"]  # OSError here: no such process, or not readable
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def read(self) -> dict[str, int]:
        """VmRSS and VmHWM (the process's peak so far) in MiB."""
        fields = dict(line.split(":", 1) for line in self.status.read_text().splitlines() if ":" in line)
        return {key: int(fields[key].split()[0]) // 1024 for key in ("VmRSS", "VmHWM")}

    def _sample(self) -> None:
        while not self.stopped.wait(0.1):
            try:
                self.peak = max(self.peak, self.read()["VmRSS"])
            except OSError:  # the server stopped
                return

    def __enter__(self) -> RssMonitor:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()


def mixed_jobs(image: Path, heavy_every: int, huge_side: int) -> Callable[[int], Job]:
    """Job ``i``: every ``heavy_every``-th a heavy one (none for 0), in turn a huge grey PNG at
    ``max_size=none`` and the photo at ``threshold=0&max_size=none``; the others normal uploads of the photo."""
    import cv2

    normal = Job("normal", "/v1/detect", *multipart(image))
    if heavy_every == 0:
        return lambda _: normal
    huge = cv2.imencode(".png", np.full((huge_side, huge_side), 128, np.uint8))[1].tobytes()
    heavy = [
        Job("huge max_size=none", "/v1/detect?max_size=none", *multipart(huge, "huge.png")),
        Job("threshold=0 max_size=none", "/v1/detect?threshold=0&max_size=none", *multipart(image)),
    ]
    return lambda i: heavy[(i // heavy_every) % 2] if i % heavy_every == heavy_every - 1 else normal


def wait_idle(host: str, port: int, until: float) -> None:
    """Wait (at most until ``until``) until the server's /health says no request is in flight or running."""
    while time.monotonic() < until:
        try:
            conn = http.client.HTTPConnection(host, port, timeout=5)
            conn.request("GET", "/health")
            health = json.loads(conn.getresponse().read())
            conn.close()
            if not health.get("in_flight") and not health.get("running"):
                return
        except (OSError, http.client.HTTPException, ValueError):
            pass
        time.sleep(0.2)


def run_mix(args: argparse.Namespace, host: str, port: int, deadline: float) -> dict:
    """The ``--mix`` run: a report of the normal and heavy requests and of the server's memory."""
    job = mixed_jobs(args.image, args.heavy_every, args.huge_side)
    send_all(host, port, lambda _: job(0), args.warmup, 1, deadline)  # normal ones
    monitor = RssMonitor(args.server_pid) if args.server_pid else None
    before = monitor.read() if monitor else None
    with monitor or contextlib.nullcontext():
        outcomes, started, seconds = send_all(host, port, job, args.requests, args.concurrency[0], deadline, args.pause)
        wait_idle(host, port, time.monotonic() + 30)  # the server's memory after its last job
    report: dict = {
        "clients": args.concurrency[0],
        "pause_s": args.pause,
        "heavy_every": args.heavy_every,
        "requests": started,
        "seconds": round(seconds, 1),
        "kinds": {},
    }
    for kind in sorted({o.kind for o in outcomes}):
        mine = [o for o in outcomes if o.kind == kind]
        p50, p95, p99 = percentiles([o.ms for o in mine if o.status == "200"])
        statuses = dict(sorted(Counter(o.status for o in mine).items()))
        report["kinds"][kind] = {"sent": len(mine), "statuses": statuses, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99}
    if monitor:
        after = monitor.read()
        report["server_rss_mib"] = {"before": before["VmRSS"], "peak": monitor.peak, "after": after["VmRSS"]}
        report["server_rss_mib"]["peak_since_start"] = after["VmHWM"]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000 (loopback only)")
    parser.add_argument("--image", type=Path, required=True, help="the picture every (normal) request uploads")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per level (default 50)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8], help="client counts (default 1 4 8)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed requests first (default 2)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds for the whole run (default 60)")
    parser.add_argument("--mix", action="store_true", help="one level of normal and heavy requests (see above)")
    parser.add_argument(
        "--heavy-every", type=int, default=10, metavar="N", help="--mix: every Nth is heavy (10; 0: none)"
    )
    parser.add_argument("--pause", type=float, default=0.0, metavar="S", help="--mix: each client's pause (default 0)")
    parser.add_argument("--huge-side", type=int, default=12000, metavar="PX", help="--mix: the huge square (12000)")
    parser.add_argument("--server-pid", type=int, metavar="PID", help="--mix: report this server process's memory")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= MAX_REQUESTS or min(args.concurrency) < 1 or max(args.concurrency) > 64:
        parser.error(f"--requests must be 1 to {MAX_REQUESTS}, --concurrency 1 to 64")
    if args.mix and (len(args.concurrency) != 1 or args.heavy_every == 1 or args.heavy_every < 0):
        parser.error("--mix takes one --concurrency and --heavy-every 0 (none) or at least 2")
    if not 32 <= args.huge_side <= 20000 or not 0 <= args.pause <= 60:
        parser.error("--huge-side must be 32 to 20000, --pause 0 to 60")
    try:
        host, port = loopback_target(args.url)
        body, content_type = multipart(args.image)
        if args.server_pid:
            RssMonitor(args.server_pid)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    deadline = time.monotonic() + args.timeout
    if args.mix:
        report = run_mix(args, host, port, deadline)
        print(json.dumps(report, indent=1))
        if args.json is not None:
            args.json.write_text(json.dumps(report, indent=1) + "\n")
        normal = report["kinds"].get("normal", {})
        return 0 if normal and normal["statuses"] == {"200": normal["sent"]} else 1
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

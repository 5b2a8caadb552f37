"""Ray for one ``hrface detect --engine ray`` run: a cluster joined at ``--address`` (or ``$RAY_ADDRESS``), or
a local instance started for the run and gone after it, even when the run is killed.

- :func:`check_address` asks the address whether a Ray cluster answers there before ``ray.init`` does: Ray
  itself retries a wrong address for about ten minutes, deaf to SIGTERM.
- :func:`ray_session` starts a local instance with :mod:`.watchdog` beside it, which kills what is left of the
  instance when this process ends (``kill -9`` included).
- :func:`quiet_stderr` keeps Ray's own lines off stderr for ``--quiet``: its loggers' notes and warnings, and the
  error-level lines its C++ core writes straight to file descriptor 2 on successful runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import ConfigError, one_line, os_reason

PROBE_TIMEOUT_S = 5.0  # for the connection, then for the answer
# The HTTP/2 client preface and an empty SETTINGS frame: a gRPC server (Ray's GCS) answers with a SETTINGS frame.
HTTP2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
SETTINGS_FRAME = 4
JOIN_TRIES_ENV, JOIN_TRIES = "RAY_gcs_server_port_wait_time_s", 5  # Ray's own default: 20 tries


def check_address(address: str | None) -> None:
    """A one-line :class:`ConfigError` within seconds (at most 2 × :data:`PROBE_TIMEOUT_S`) when nothing answers
    as a Ray cluster where ``ray.init`` would go: ``address``, else ``$RAY_ADDRESS``, else ('auto' too) the
    cluster that ``ray start`` recorded on this machine; nothing listens there, the host is unknown or silent, or
    the port is another service's.  Nothing to check when a local instance is to be started."""
    given = address or os.environ.get("RAY_ADDRESS")
    if given == "local":
        return
    if given and given != "auto":
        option, target = (f"--address {given}" if address else f"$RAY_ADDRESS={given}"), given.removeprefix("ray://")
        hint = "check the address and that the cluster runs ('ray status' on its head node)"
        hint += ", or leave out --address to start Ray on this machine" if address else ""
    else:
        target = recorded_address()
        if target is None:
            return  # a local instance is started; with 'auto', Ray says at once that no cluster runs
        option = f"{target}, the Ray cluster 'ray start' recorded on this machine,"
        hint = "start it again, or forget it with 'ray stop'"
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"{option}: not a HOST:PORT address; pass the head node's, e.g. 10.0.0.1:6379")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S) as connection:
            if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
                return  # the answer comes after a TLS handshake: that the port accepts is all that is checked
            connection.sendall(HTTP2_HELLO)
            answer = b""
            while len(answer) < 4 and (chunk := connection.recv(9 - len(answer))):
                answer += chunk
    except OSError as exc:
        reason = os_reason(exc) if exc.strerror else one_line(exc, 100) or "timed out"
        raise ConfigError(f"{option}: no Ray cluster answers there ({reason}); {hint}") from None
    if len(answer) < 4 or answer[3] != SETTINGS_FRAME:
        raise ConfigError(
            f"{option}: this port answers, but not as a Ray cluster; pass the head node's GCS port (6379 by default)"
        )


def recorded_address() -> str | None:
    """The address of the cluster that ``ray start`` recorded on this machine (which ``ray.init`` joins without
    an address), or None."""
    try:
        from ray._private.utils import read_ray_address

        return read_ray_address()
    except Exception:  # Ray's private helper moved: then ray.init finds it alone
        return None


@contextlib.contextmanager
def ray_session(address: str | None, quiet: bool) -> Iterator[None]:
    """Ray for the body: joined at ``address`` (checked first, :func:`check_address`), else a local instance
    started here (with :mod:`.watchdog`) and shut down after; Ray already initialised in this process is used as
    it is and left running.  With ``quiet``, Ray's own log lines stay off stderr (:func:`quiet_stderr`)."""
    import ray

    with quiet_stderr(quiet):
        if ray.is_initialized():
            yield
            return
        check_address(address)
        local = address is None and not os.environ.get("RAY_ADDRESS") and recorded_address() is None
        watchdog = start_watchdog() if local else None
        try:
            start_ray(address, local, quiet)
            try:
                yield
            finally:
                ray.shutdown()
        finally:
            if watchdog is not None:
                stop_watchdog(watchdog)


def start_ray(address: str | None, local: bool, quiet: bool) -> None:
    """``ray.init``: a local instance (no dashboard), or a cluster (at ``address``), tried :data:`JOIN_TRIES`
    times, a second apart.  Ray's lines while it starts are shown once it has started (unless ``quiet``);
    when it cannot start, one :class:`ConfigError` says so instead."""
    import ray

    options: dict[str, Any] = {"address": address, "logging_level": logging.ERROR if quiet else logging.WARNING}
    options["log_to_driver"] = not quiet  # the workers' own lines
    if local:
        options["include_dashboard"] = False
    tries = {} if local or JOIN_TRIES_ENV in os.environ else {JOIN_TRIES_ENV: str(JOIN_TRIES)}
    with tempfile.TemporaryFile() as caught:
        with captured_stderr(caught), _environment(tries):
            try:
                ray.init(**options)
                failed = None
            except Exception as exc:  # a cluster that does not answer, a version mismatch, no space in /tmp
                failed = exc
        caught.seek(0)
        notes = caught.read().decode(errors="replace")
    if failed is not None:
        where = f"--address {address}" if address else "a local Ray instance" if local else "the Ray cluster to join"
        hint = "check the cluster ('ray status' on its head node)" if address else "check the space in /tmp"
        raise ConfigError(f"{where}: cannot start Ray ({one_line(failed, 300)}); {hint}") from None
    if not quiet:
        sys.stderr.write(notes)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set for the body (and only there)."""
    os.environ.update(values)
    try:
        yield
    finally:
        for key in values:
            os.environ.pop(key, None)


def start_watchdog() -> subprocess.Popen[bytes] | None:
    """Start :mod:`.watchdog` for this process (Linux; None elsewhere or when it cannot start): in its own
    session, so that Ctrl-C in a terminal and a signal to this process group leave it to do its work."""
    if not sys.platform.startswith("linux"):
        return None
    script = Path(__file__).with_name("watchdog.py")
    try:
        return subprocess.Popen(
            [sys.executable, "-I", str(script), str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        return None


def stop_watchdog(watchdog: subprocess.Popen[bytes]) -> None:
    """Close the watchdog's pipe (it then kills whatever Ray left) and wait for it, briefly."""
    with contextlib.suppress(OSError):
        watchdog.stdin.close()  # type: ignore[union-attr]
    with contextlib.suppress(subprocess.TimeoutExpired):
        watchdog.wait(timeout=5)


@contextlib.contextmanager
def captured_stderr(into: IO[bytes]) -> Iterator[None]:
    """File descriptor 2 (Python's ``sys.stderr``, and what C++ code writes there) into the file ``into`` for
    the body."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to keep clean
        yield
        return
    os.dup2(into.fileno(), 2)
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def quiet_stderr(quiet: bool) -> Iterator[None]:
    """With ``quiet``, stderr is caught for the body (:func:`captured_stderr`), so that Ray's lines (its Python
    loggers', and its C++ core's, which bypass Python) stay off it; hrface's own lines among them (``hrface:
    …``) are passed on afterwards.  Without ``quiet``, nothing changes."""
    if not quiet:
        yield
        return
    with tempfile.TemporaryFile() as caught:
        try:
            with captured_stderr(caught):
                yield
        finally:
            caught.seek(0)
            text = caught.read().decode(errors="replace")
            ours = [line for line in text.splitlines() if line.startswith("hrface:")]
            if ours:
                print("\n".join(ours), file=sys.stderr)

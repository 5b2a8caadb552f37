"""Kill what is left of a local Ray instance when the process that started it ends, however it ends
(``kill -9`` included).

``hrface detect --engine ray`` runs this file as a script (``python -I watchdog.py PID``: standard library only,
in a session of its own) before it starts a local Ray instance, with its standard input a pipe from that
process, the driver.  The pipe closes when the driver closes it (after ``ray.shutdown()``) or dies (the kernel
closes it then).  Until then the watchdog notes, twice a second, the driver's descendants (process id and start
time); then it kills those still running, with the same start time (so never a process that merely reuses an
id).  Without it, Ray's agents (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``) outlive a killed driver by a
minute or more, stuck reporting the raylet's death to the dead GCS; the GCS and the raylet themselves die with
the driver (Ray's kernel fate-sharing), and its workers with the raylet.  Linux only (it reads ``/proc``).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys

INTERVAL_S = 0.5


def process_table() -> dict[int, tuple[int, int]]:
    """Process id → (parent id, start time in clock ticks after boot) of every process, from ``/proc``."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as file:
                stat = file.read()
        except OSError:  # ended meanwhile
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()  # after the command name, which may hold spaces
        table[int(name)] = (int(fields[1]), int(fields[19]))
    return table


def descendants(root: int, table: dict[int, tuple[int, int]] | None = None) -> dict[int, int]:
    """Process id → start time of each process below ``root`` (children, their children, …)."""
    table = process_table() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found: dict[int, int] = {}
    todo = list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        found[pid] = table[pid][1]
        todo += children.get(pid, ())
    return found


def kill_noted(noted: dict[int, int]) -> None:
    """SIGKILL each noted process that still runs with the same start time."""
    table = process_table()
    for pid, start in noted.items():
        if pid != os.getpid() and pid in table and table[pid][1] == start:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def watch(driver: int) -> None:
    """Note ``driver``'s descendants until standard input ends, then kill those still running."""
    noted: dict[int, int] = {}
    while True:
        ready, _, _ = select.select([0], [], [], INTERVAL_S)
        if ready and not os.read(0, 4096):
            break
        noted.update(descendants(driver))
    kill_noted(noted)


if __name__ == "__main__":
    watch(int(sys.argv[1]))

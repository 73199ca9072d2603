"""CPU time spent by the processes of a load test, read from ``/proc`` (Linux).

Throughput on a machine whose cores are all busy is bounded by what a request costs in CPU,
wherever that CPU is spent: the app servers, the database, the load generator itself. The
load benchmark reads these counters before and after each phase to say where the time went.
On a system without ``/proc`` every figure is ``None`` rather than a guess.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


def _stat(pid: int) -> tuple[str, list[str]] | None:
    """The process's command name and the fields of ``/proc/PID/stat`` after it."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:  # the process ended between listing and reading
        return None
    # The command name is in parentheses and may hold spaces: split after its last ")".
    return text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()


def _processes() -> Iterator[tuple[int, str, int]]:
    """Every process now running: its id, command name and process group."""
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            yield int(entry.name), stat[0], int(stat[1][2])


def cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """User plus system CPU seconds the process has used so far (0 if it is gone).

    With ``reaped_children``, also what its children used before they ended and it waited
    for them. Summed over a parent and its live children, that total never drops when a
    child ends: a database backend closed mid-phase, or an app worker replaced, still counts.
    """
    stat = _stat(pid)
    if stat is None:
        return 0.0
    fields = stat[1]
    # utime, stime, cutime, cstime: fields 14 to 17 of proc(5), counted from the 3rd.
    ticks = sum(int(v) for v in fields[11 : 15 if reaped_children else 13])
    return ticks / os.sysconf("SC_CLK_TCK")


def group_members(group: int) -> list[int]:
    """Processes of the process group ``group`` (an app server and its workers)."""
    return [pid for pid, _, member_of in _processes() if member_of == group]


def named(command: str) -> list[int]:
    """Processes whose command name is ``command`` (``postgres`` for the database's)."""
    return [pid for pid, name, _ in _processes() if name == command]


@dataclass
class CpuMeter:
    """Reads the CPU of the app servers (by process group), the local database server's
    processes and this process (the load generator), and gives what each used since the
    last reading."""

    server_groups: list[int]
    database_is_local: bool

    def available(self) -> bool:
        """Whether this system has the counters."""
        return (PROC / str(os.getpid()) / "stat").exists()

    def _read(self) -> dict[str, dict[int, float]]:
        servers = [pid for group in self.server_groups for pid in group_members(group)]
        database = named("postgres") if self.database_is_local else []
        return {
            # A server's master and the database's postmaster wait for their children.
            "app_servers": _each(servers, reaped_children=True),
            "database": _each(database, reaped_children=True),
            # Not this process's children: the app servers are, and count above.
            "load_generator": {os.getpid(): cpu_seconds(os.getpid())},
        }

    def start(self) -> dict[str, dict[int, float]]:
        """A reading to compare a later one with."""
        return self._read() if self.available() else {}

    def used_since(self, before: dict[str, dict[int, float]]) -> dict[str, float | None]:
        """CPU seconds each part used since ``before`` (a process new since then counts from
        zero; one that ended since counts in its parent's reaped children)."""
        if not before:
            return {"app_servers": None, "database": None, "load_generator": None}
        after = self._read()
        used: dict[str, float | None] = {}
        for part, now in after.items():
            # The totals, not each process's change: a child that ended moved its time
            # from its own line to its parent's.
            used[part] = max(0.0, sum(now.values()) - sum(before[part].values()))
        if not self.database_is_local:
            used["database"] = None
        return used


def _each(pids: Iterable[int], *, reaped_children: bool) -> dict[int, float]:
    return {pid: cpu_seconds(pid, reaped_children=reaped_children) for pid in pids}

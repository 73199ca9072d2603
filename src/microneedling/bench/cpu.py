"""CPU time spent by the processes of a load test, read from ``/proc`` (Linux).

Throughput on a machine whose cores are all busy is bounded by what a request costs in CPU,
wherever that CPU is spent: the app servers, the database, the load generator itself. The
load benchmark reads these counters before and after each phase to say where the time went.
On a system without ``/proc`` every figure is ``None`` rather than a guess.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
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


def _title(pid: int) -> list[str]:
    """The words of a process's title (a PostgreSQL backend writes its own there)."""
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode().split()
    except (OSError, UnicodeDecodeError):
        return []


def database_backends(database: str) -> list[int]:
    """PostgreSQL backends connected to ``database``, by their title: ``postgres: [cluster:]
    user database client activity``. The server is shared: the other databases' backends,
    and the server's own processes that work for all of them, are not this database's."""
    found = []
    for pid in named("postgres"):
        words = _title(pid)
        if not words or words[0] != "postgres:":
            continue
        rest = words[1:]
        if rest and rest[0].endswith(":"):  # the cluster's name
            rest = rest[1:]
        if len(rest) >= 3 and rest[1] == database:  # user, database, client, ...
            found.append(pid)
    return found


@dataclass
class CpuMeter:
    """Reads the CPU of the app servers (by process group), the backends of the local
    database server that serve ``database_name`` and the load generator (this process and
    the client processes in ``generator_pids``), and gives what each used since the last
    reading. The client processes are set before ``start`` and must live until
    ``used_since``: the load phase keeps them waiting until it has read them.

    A backend that ends between two readings (a connection closed at its maximum age) is
    no longer in ``/proc`` at the second, and the postmaster that reaped it also reaped every
    other database's backends: so between ``start`` and ``used_since`` a thread reads the
    backends every ``sample_seconds``, and one that ended counts with its last reading."""

    server_groups: list[int]
    database_is_local: bool
    database_name: str | None = None
    sample_seconds: float = 0.5  # a reading costs ~2 ms of the load generator's CPU
    generator_pids: list[int] = field(default_factory=list)
    _last_seen: dict[int, float] = field(default_factory=dict, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _sampler: threading.Thread | None = field(default=None, init=False, repr=False)

    def _database(self) -> dict[int, float]:
        if not self.database_is_local or self.database_name is None:
            return {}
        read = _each(database_backends(self.database_name), reaped_children=False)
        return {pid: seconds for pid, seconds in read.items() if seconds}  # 0: it just ended

    def _sample(self) -> None:
        while not self._stop.wait(self.sample_seconds):
            self._last_seen.update(self._database())

    def available(self) -> bool:
        """Whether this system has the counters."""
        return (PROC / str(os.getpid()) / "stat").exists()

    def _read(self) -> dict[str, dict[int, float]]:
        servers = [pid for group in self.server_groups for pid in group_members(group)]
        return {
            # A server's master waits for its workers.
            "app_servers": _each(servers, reaped_children=True),
            "database": self._database(),
            # Not this process's reaped children: the app servers are, and count above; the
            # client processes are read while they live, their start-up left out.
            "load_generator": _each([os.getpid(), *self.generator_pids], reaped_children=False),
        }

    def start(self) -> dict[str, dict[int, float]]:
        """A reading to compare a later one with (and the database's backends watched)."""
        if not self.available():
            return {}
        self._halt()
        reading = self._read()
        self._last_seen = dict(reading["database"])
        if self.database_is_local and self.database_name is not None:
            self._stop = threading.Event()
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        return reading

    def _halt(self) -> None:
        if self._sampler is not None:
            self._stop.set()
            self._sampler.join()
            self._sampler = None

    def used_since(self, before: dict[str, dict[int, float]]) -> dict[str, float | None]:
        """CPU seconds each part used since ``before`` (a process new since then counts from
        zero; one that ended since counts in its parent's reaped children)."""
        if not before:
            return {"app_servers": None, "database": None, "load_generator": None}
        self._halt()
        after = self._read()
        # A backend that ended since counts with what it had used when last seen.
        after["database"] = {**self._last_seen, **after["database"]}
        used: dict[str, float | None] = {}
        for part, now in after.items():
            # The totals, not each process's change: a child that ended moved its time
            # from its own line to its parent's.
            used[part] = max(0.0, sum(now.values()) - sum(before[part].values()))
        if not self.database_is_local or self.database_name is None:
            used["database"] = None
        elif not (before["database"] or after["database"]):
            # No backend of the database seen at all (titles off, or none connected):
            # unknown, not zero.
            used["database"] = None
        return used


def _each(pids: Iterable[int], *, reaped_children: bool) -> dict[int, float]:
    return {pid: cpu_seconds(pid, reaped_children=reaped_children) for pid in pids}

"""The busiest hour: two app servers on one database, patients browsing and booking courses
while the front desk works the day sheet, all over loopback HTTP.

Run by ``microneedling bench --only load`` in a child process on PostgreSQL (see runner.py).
Three timed phases, each bounded in seconds: the trivial endpoint alone (``/api/v1/health``)
at full concurrency, booking courses alone at the same concurrency, then the mixed hour. The
booking ratio is bookings made (201 answers; a 202 is a request left for review) per second
over trivial 2xx answers per second on the same servers.
In the mixed hour the desk also books over a taken visit on purpose now and then (a staff
override, its own endpoint ``override`` in the summaries: neither an error nor a double
booking). After each run the database is checked (no two active reservations of a resource
overlap, unless the later is an override) and the run's bookings are removed, so that every
run books into the same diary. The three phases run as many times as asked, at most
MAX_RUNS; the ratio reported is the runs' median.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import queue
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from http.client import HTTPConnection, HTTPException
from typing import Any
from urllib.parse import urlencode, urlsplit

from microneedling.bench.cpu import CpuMeter
from microneedling.bench.timing import machine_reference, nearest_rank

#: The load generator's processes and the client threads of each. In one process the GIL
#: bounds all the clients together by one core, and the trivial phase measured the generator
#: rather than the servers; several processes can use every core the servers leave idle.
PROCESSES = 4
THREADS = 2
CLIENTS = PROCESSES * THREADS
#: Seconds a client process may take to start, and to hand its answers back after its phase
#: (a request is given up after REQUEST_TIMEOUT): past them the phase fails, never hangs.
START_SECONDS = 60.0
REQUEST_TIMEOUT = 60.0
PHASE_SECONDS = 15.0
PATIENTS = 3000
SERVERS = 2
#: Latencies kept per endpoint for the plots (evenly thinned beyond this).
SAMPLES_KEPT = 4000
#: At most this many runs of the three phases (each books about a thousand courses).
MAX_RUNS = 3


@dataclass
class Tally:
    """Latencies and answers of one endpoint in one phase."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, status: str) -> None:
        """One answer (or ``"error"`` for a failed connection)."""
        with self.lock:
            self.latencies.append(seconds)
            self.statuses[status] += 1

    def merge(self, latencies: list[float], statuses: dict[str, int]) -> None:
        """The answers another process tallied for the same endpoint."""
        with self.lock:
            self.latencies.extend(latencies)
            for status, count in statuses.items():
                self.statuses[status] += count


#: The one answer that means the work was done, where a 2xx may mean something else: a
#: course booking answered 202 is a request left for a clinician to review, not a booking.
DONE = {"book_course": "201", "override": "201"}


def _successes(tally: Tally, endpoint: str) -> int:
    """The answers that did the endpoint's work (2xx, or its one status in ``DONE``)."""
    with tally.lock:
        return sum(
            n
            for status, n in tally.statuses.items()
            if (status == DONE[endpoint] if endpoint in DONE else status.startswith("2"))
        )


def _thinned(ordered: list[float], step: int) -> list[float]:
    kept = ordered[::step]
    return kept if kept[-1] == ordered[-1] else [*kept, ordered[-1]]


def _summary(tally: Tally, seconds: float, endpoint: str = "") -> dict[str, Any]:
    ordered = sorted(tally.latencies)
    if not ordered:
        return {"requests": 0}
    step = max(1, len(ordered) // SAMPLES_KEPT)
    return {
        "requests": len(ordered),
        "requests_per_second": len(ordered) / seconds,
        "successes_per_second": _successes(tally, endpoint) / seconds,
        # Answered but not done: refusals (409, 429), redirects to sign-in, 202s, 5xx, errors.
        "unsuccessful": len(ordered) - _successes(tally, endpoint),
        "p50_ms": nearest_rank(ordered, 0.50) * 1e3,
        "p95_ms": nearest_rank(ordered, 0.95) * 1e3,
        "p99_ms": nearest_rank(ordered, 0.99) * 1e3,
        "statuses": dict(tally.statuses),
        "server_errors": sum(n for s, n in tally.statuses.items() if s.startswith("5")),
        "connection_errors": tally.statuses.get("error", 0),
        # Evenly thinned, the slowest kept: the plot's tail ends at the real worst case.
        "samples_ms": [round(v * 1e3, 3) for v in _thinned(ordered, step)],
    }


@dataclass
class World:
    """What the simulated people act on."""

    location_ids: list[int]
    location_slugs: list[str]
    service_id: int
    patient_ids: list[int]
    token: str
    desk_cookie: str
    first_day: date
    #: Visits already in the diary that staff book over on purpose (see occupied_visits).
    occupied: list[dict[str, Any]] = field(default_factory=list)
    next_patient: int = 0
    #: Where each client process's share of the patients stands, by (share, shares): the
    #: next phase of the run goes on from there, so no patient books twice in a run.
    shares_taken: dict[tuple[int, int], int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def patient(self) -> int:
        """A patient who has not booked yet (each books one course)."""
        with self.lock:
            self.next_patient += 1
            return self.patient_ids[self.next_patient % len(self.patient_ids)]

    def share(self, index: int, shares: int) -> World:
        """The world one of ``shares`` client processes acts on: every ``shares``-th patient
        from the ``index``-th (no two processes hold the same patient, as a lock cannot span
        them), from where this share stopped in the run's earlier phases."""
        if len(self.patient_ids) < shares:
            raise ValueError(f"{len(self.patient_ids)} patients cannot be shared {shares} ways")
        return replace(
            self,
            patient_ids=self.patient_ids[index::shares],
            next_patient=self.shares_taken.get((index, shares), 0),
            shares_taken={},
            lock=threading.Lock(),
        )

    def __getstate__(self) -> dict[str, Any]:
        """Everything but the lock, which cannot go to another process (it gets its own)."""
        return {name: value for name, value in self.__dict__.items() if name != "lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """As pickled, with a lock of its own."""
        self.__dict__.update(state, lock=threading.Lock())


def _build(today: date) -> World:
    from django.contrib.auth import get_user_model  # noqa: PLC0415
    from django.contrib.sessions.backends.db import SessionStore  # noqa: PLC0415
    from django_otp.plugins.otp_totp.models import TOTPDevice  # noqa: PLC0415

    from microneedling.accounts.models import StaffMember  # noqa: PLC0415
    from microneedling.accounts.services import api_token_issue  # noqa: PLC0415
    from microneedling.bench.chain import build_chain  # noqa: PLC0415
    from microneedling.core.screening import Intake  # noqa: PLC0415
    from microneedling.directory.models import Location  # noqa: PLC0415
    from microneedling.patients.models import Patient  # noqa: PLC0415
    from microneedling.patients.services import screening_record  # noqa: PLC0415

    ids = build_chain(first_day=today, locations=4, providers=24, busy_appointments=600, seed=11)
    org = ids["organization"]
    first_day = today + timedelta(days=3)
    intake = Intake.model_validate(
        {
            "planned_date": first_day.isoformat(),
            "birth_date": "1988-05-05",
            "fitzpatrick_type": 2,
            "treatment_areas": ["face"],
            "pregnant": False,
            "breastfeeding": False,
        }
    )
    patients = Patient.objects.bulk_create(
        [
            Patient(
                organization_id=org,
                first_name="Load",
                last_name=f"Patient{n}",
                email=f"load{n}@example.test",
                birth_date=date(1988, 5, 5),
                fitzpatrick_type=2,
            )
            for n in range(PATIENTS)
        ]
    )
    for patient in patients:
        screening_record(patient=patient, intake=intake)
    user_model = get_user_model()
    operator = user_model.objects.create_user("load.operator")
    StaffMember.objects.create(user=operator, role="chain_operator", organization_id=org)
    desk = user_model.objects.create_user("load.desk")
    member = StaffMember.objects.create(user=desk, role="front_desk", organization_id=org)
    places = list(Location.objects.filter(organization_id=org).order_by("pk"))
    member.locations.set(places)
    device = TOTPDevice.objects.create(user=desk, name="load", confirmed=True)
    # A signed-in front desk, as after password and code: the session a browser would hold.
    session = SessionStore()
    session["_auth_user_id"] = str(desk.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = desk.get_session_auth_hash()
    session["otp_device_id"] = device.persistent_id
    session.create()
    return World(
        location_ids=[p.pk for p in places],
        location_slugs=[p.slug for p in places],
        service_id=ids["service"],
        patient_ids=[p.pk for p in patients],
        token=api_token_issue(user=operator),
        desk_cookie=f"sessionid={session.session_key}",
        first_day=first_day,
        occupied=occupied_visits(
            organization_id=org, first_day=first_day, days=60, count=200, seed=11
        ),
    )


def occupied_visits(
    *, organization_id: int, first_day: date, days: int, count: int, seed: int
) -> list[dict[str, Any]]:
    """Up to ``count`` visits booked at the organisation's locations in the ``days`` from
    ``first_day``, each as an override names it (location, provider, start); the same ones
    for the same ``seed``."""
    from microneedling.scheduling.models import Appointment  # noqa: PLC0415

    start = datetime.combine(first_day, time_of_day.min, tzinfo=UTC)
    visits = list(
        Appointment.objects.filter(
            location__organization_id=organization_id,
            starts_at__gte=start,
            starts_at__lt=start + timedelta(days=days),
        )
        .order_by("pk")
        .values("location_id", "provider_id", "starts_at")
    )
    chosen = random.Random(seed).sample(visits, min(count, len(visits)))
    return [{**visit, "starts_at": visit["starts_at"].isoformat()} for visit in chosen]


def _serve_command(port: int) -> list[str]:
    # Loopback only, said here rather than left to the command's default.
    return [
        *(sys.executable, "-m", "microneedling.cli", "serve"),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--workers", "1", "--task-workers", "0"),
    ]


def _servers(
    env: dict[str, str],
    *,
    command: Callable[[int], list[str]] = _serve_command,
    ready_seconds: float = 90,
    grace_seconds: float = 30,
) -> list[tuple[subprocess.Popen[bytes], str]]:
    """Start the app servers, each in its own process group, and wait until they answer;
    if one does not, stop every one started before raising (none is left running)."""
    started: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        for _ in range(SERVERS):
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            process = subprocess.Popen(  # noqa: S603 (our own command)
                command(port),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            started.append((process, f"http://127.0.0.1:{port}"))
        for _, base in started:
            deadline = time.monotonic() + ready_seconds
            while not _answers(base):
                if time.monotonic() > deadline:
                    raise RuntimeError("a load server did not start")
                time.sleep(0.2)
    except BaseException:
        _stop_servers(started, grace_seconds=grace_seconds)
        raise
    return started


def _answers(base: str) -> bool:
    """Whether the server at ``base`` answers its trivial endpoint."""
    probe = _connection(base, timeout=2)
    try:
        return _health(probe, None)[1] != "error"
    finally:
        probe.close()


def _stop_servers(
    servers: list[tuple[subprocess.Popen[bytes], str]], *, grace_seconds: float = 30
) -> None:
    """SIGTERM every server's process group, then SIGKILL the ones still there after
    ``grace_seconds``: every server is waited for, whatever one of them does."""
    for process, _ in servers:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    for process, _ in servers:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            # Still there: the master and whatever of its group is left.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


Action = Callable[[HTTPConnection, World], tuple[str, str]]


def _connection(base: str, *, timeout: float = REQUEST_TIMEOUT) -> HTTPConnection:
    """A keep-alive connection to one server, for one client: ``http.client`` costs the
    generator far less CPU a request than a ``requests`` session (no adapters, hooks or
    cookie jar), and it opens the connection again by itself when the server closed it."""
    address = urlsplit(base)
    host = address.hostname or "127.0.0.1"
    return HTTPConnection(host, address.port, timeout=timeout)


def _send(
    http: HTTPConnection,
    endpoint: str,
    method: str,
    path: str,
    *,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[str, str]:
    """The endpoint and its answer's status, or ``"error"`` when no answer came (refused,
    reset, timed out): a failed request still counts against its own endpoint, with the
    time it took, so that a timeout is not dropped from that endpoint's latencies. Redirects
    are answers, not followed (a day sheet's redirect to sign-in is not the sheet)."""
    sent = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    try:
        http.request(method, path, body=data, headers=sent)
        answer = http.getresponse()
        answer.read()  # the whole answer, so that the connection can carry the next request
    except (OSError, HTTPException):
        http.close()  # half a request may be left on it: the next one opens a fresh one
        return endpoint, "error"
    return endpoint, str(answer.status)


def _health(http: HTTPConnection, world: World | None) -> tuple[str, str]:
    return _send(http, "health", "GET", "/api/v1/health")


def _book(http: HTTPConnection, world: World) -> tuple[str, str]:
    rng = random.Random()
    body: dict[str, Any] = {
        "patient_id": world.patient(),
        "location_id": rng.choice(world.location_ids),
        "service_id": world.service_id,
        "indications": ["acne_scars"],
        "first_session": (world.first_day + timedelta(days=rng.randrange(60))).isoformat(),
        "areas": ["face"],
    }
    return _send(
        http,
        "book_course",
        "POST",
        "/api/v1/courses",
        body=body,
        headers={"Authorization": f"Bearer {world.token}"},
    )


def _browse(http: HTTPConnection, world: World) -> tuple[str, str]:
    rng = random.Random()
    start = world.first_day + timedelta(days=rng.randrange(60))
    query = urlencode(
        {
            "location_id": rng.choice(world.location_ids),
            "service_id": world.service_id,
            "start": start.isoformat(),
            "end": (start + timedelta(days=6)).isoformat(),
        }
    )
    return _send(http, "availability_week", "GET", f"/api/v1/availability?{query}")


def _day_sheet(http: HTTPConnection, world: World) -> tuple[str, str]:
    rng = random.Random()
    day = world.first_day + timedelta(days=rng.randrange(30))
    slug = rng.choice(world.location_slugs)
    return _send(
        http,
        "day_sheet",
        "GET",
        f"/desk/locations/{slug}/day/?{urlencode({'day': day.isoformat()})}",
        headers={"Cookie": world.desk_cookie},
    )


def override_request(world: World, rng: random.Random) -> dict[str, Any]:
    """The body of a staff override: a visit booked on purpose, with a reason, at the time
    and with the provider of a visit already in the diary, for a patient of its own."""
    visit = rng.choice(world.occupied)
    return {
        **visit,
        "patient_id": world.patient(),
        "service_id": world.service_id,
        "override_reason": "load test: the provider agreed to see both patients",
    }


def _override(http: HTTPConnection, world: World) -> tuple[str, str]:
    return _send(
        http,
        "override",
        "POST",
        "/api/v1/appointments",
        body=override_request(world, random.Random()),
        headers={"Authorization": f"Bearer {world.token}"},
    )


def _mixed(http: HTTPConnection, world: World) -> tuple[str, str]:
    # The busiest hour: mostly looking, some booking, the desk on its sheets; now and then
    # the desk books over a taken time on purpose, so that the override path (and the
    # bookings that must then avoid it) is under load too.
    roll = random.random()
    if roll < 0.55:
        return _browse(http, world)
    if roll < 0.78:
        return _book(http, world)
    if roll < 0.80 and world.occupied:
        return _override(http, world)
    if roll < 0.80:
        return _book(http, world)
    if roll < 0.95:
        return _day_sheet(http, world)
    return _health(http, world)


def _client_process(
    action: Action,
    bases: list[str],
    world: World,
    *,
    share: int,
    threads: int,
    channel: Any,
    go: Any,
    stop_at: Any,
    release: Any,
) -> None:
    """One process of the load generator: ``threads`` clients, each on its own connection
    to one server, run ``action`` from ``go`` until ``stop_at`` (a monotonic time, the same
    clock in every process); then the tallies go back on ``channel`` and the process waits
    for ``release``, so that its CPU can still be read while it is alive."""
    # The phase's process stops the clients (and is the one interrupted): a ^C here would
    # only print a traceback per process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tallies: dict[str, Tally] = {}
    failures: list[str] = []
    lock = threading.Lock()

    def tally(name: str) -> Tally:
        # Under a lock: two threads meeting a new endpoint at once must not make two.
        with lock:
            return tallies.setdefault(name, Tally())

    def client(number: int) -> None:
        # Round-robin over the servers by the client's number among all, as a load balancer.
        http = _connection(bases[number % len(bases)])
        try:
            while time.monotonic() < stop_at.value:
                started = time.perf_counter()
                name, status = action(http, world)
                tally(name).add(time.perf_counter() - started, status)
        except BaseException:  # handed to the phase, which raises it
            failures.append(traceback.format_exc())
        finally:
            http.close()

    workers = [threading.Thread(target=client, args=(share * threads + n,)) for n in range(threads)]
    channel.put(("ready", share, None))
    if not go.wait(START_SECONDS):
        return
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        channel.put(("failed", share, failures[0]))
    else:
        answers = {name: (tally.latencies, dict(tally.statuses)) for name, tally in tallies.items()}
        channel.put(("done", share, (answers, world.next_patient)))
    release.wait(START_SECONDS)


def _messages(channel: Any, processes: list[Any], kind: str, *, seconds: float) -> dict[int, Any]:
    """One ``kind`` message from every client process within ``seconds``; a client that
    failed, or ended or stayed silent without one, fails the phase."""
    deadline = time.monotonic() + seconds
    got: dict[int, Any] = {}
    while len(got) < len(processes):
        try:
            said, share, payload = channel.get(timeout=0.2)
        except queue.Empty:
            gone = [n for n, p in enumerate(processes) if n not in got and not p.is_alive()]
            if gone:
                raise RuntimeError(
                    f"load client process {gone[0]} ended without answering"
                ) from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"load client processes did not answer {kind!r}") from None
            continue
        if said == "failed":
            raise RuntimeError(f"load client process {share} failed:\n{payload}")
        got[share] = payload
    return got


def _reap(processes: list[Any], *, grace_seconds: float = 5) -> None:
    """Wait for every client process; terminate, then kill, those still there."""
    processes = [
        p for p in processes if p.pid is not None
    ]  # one never started: nothing to wait for
    deadline = time.monotonic() + grace_seconds
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.terminate()
            process.join(grace_seconds)
        if process.is_alive():
            process.kill()
            process.join()


def _phase(
    action: Action,
    bases: list[str],
    world: World,
    seconds: float,
    tallies: dict[str, Tally],
    *,
    meter: CpuMeter | None = None,
    processes: int = PROCESSES,
    threads: int = THREADS,
) -> tuple[float, dict[str, float | None] | None]:
    """Run ``action`` from ``processes`` × ``threads`` clients for ``seconds``, adding the
    answers of every process to ``tallies`` (so that runs add up); the seconds it took and,
    with a ``meter``, the CPU each part of the machine used meanwhile (the generator's
    processes included). Every client process is reaped before this returns or raises."""
    # Spawned, not forked: the phase's process may hold threads (the meter's) and database
    # connections, which a fork would copy half-way.
    context = multiprocessing.get_context("spawn")
    channel = context.Queue()
    go, release = context.Event(), context.Event()
    stop_at = context.Value("d", 0.0)
    started = [
        context.Process(
            target=_client_process,
            args=(action, bases, world.share(n, processes)),
            kwargs={
                "share": n,
                "threads": threads,
                "channel": channel,
                "go": go,
                "stop_at": stop_at,
                "release": release,
            },
            daemon=True,
        )
        for n in range(processes)
    ]
    try:
        for process in started:
            process.start()
        # Every process started before the clock runs: the phase times requests, not imports.
        _messages(channel, started, "ready", seconds=START_SECONDS)
        if meter is not None:
            meter.generator_pids = [p.pid for p in started if p.pid is not None]
        reading = meter.start() if meter is not None else None
        began = time.monotonic()
        stop_at.value = began + seconds
        go.set()
        done = _messages(channel, started, "done", seconds=seconds + REQUEST_TIMEOUT + 30)
        took = time.monotonic() - began
        used = meter.used_since(reading) if meter is not None and reading is not None else None
    finally:
        stop_at.value = 0.0  # clients not yet started, or still running, stop at once
        go.set()
        release.set()
        _reap(started)
        if meter is not None:
            meter.generator_pids = []
    for share, (answers, next_patient) in done.items():
        world.shares_taken[(share, processes)] = next_patient
        for name, (latencies, statuses) in answers.items():
            tallies[name].merge(latencies, statuses)
    return took, used


def _summaries(tallies: dict[str, Tally], seconds: float) -> dict[str, dict[str, Any]]:
    return {name: _summary(tally, seconds, name) for name, tally in sorted(tallies.items())}


def table_marks() -> dict[str, int]:
    """The highest id of each table a booking writes to, before a run."""
    from django.db.models import Max  # noqa: PLC0415

    from microneedling.notifications.models import Message  # noqa: PLC0415
    from microneedling.scheduling.models import Appointment, Course  # noqa: PLC0415

    return {
        model.__name__: model.objects.aggregate(top=Max("id"))["top"] or 0
        for model in (Message, Appointment, Course)
    }


def undo_since(marks: dict[str, int]) -> None:
    """Delete the courses, visits (with their reservations) and messages a run booked, so the
    next run books into the same diary and the runs are alike. The audit trail is append-only
    and keeps its rows; nothing reads it while booking."""
    from django.db import transaction  # noqa: PLC0415

    from microneedling.notifications.models import Message  # noqa: PLC0415
    from microneedling.scheduling.models import Appointment, Course  # noqa: PLC0415

    with transaction.atomic():
        for model in (Message, Appointment, Course):  # children before the rows they name
            model.objects.filter(id__gt=marks[model.__name__]).delete()


def _double_bookings() -> int:
    """Pairs of active reservations of one resource (provider, room, device or patient) that
    overlap where the later one is not a deliberate override: an override may overlap what
    was booked before it, never the reverse. On PostgreSQL the exclusion constraint already
    refuses two overlapping ordinary rows, so the pairs that can really occur are an
    ordinary booking written over an earlier override, which only the booking code's locks
    prevent: those count here too (skipping every pair with an override would make the
    check unable to find the one double booking the database lets through)."""
    from django.db import connection  # noqa: PLC0415

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FROM scheduling_reservation a
            JOIN scheduling_reservation b
              ON a.resource = b.resource AND a.id < b.id
             AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at
            WHERE a.active AND b.active AND NOT b.overlap_allowed
            """
        )
        return int(cursor.fetchone()[0])


def _cpu_per_request(used: dict[str, float | None], requests: int) -> dict[str, float | None]:
    """Milliseconds of CPU per request in each part of the machine, and in all of them."""
    per = {
        part: (None if seconds is None or not requests else seconds / requests * 1e3)
        for part, seconds in used.items()
    }
    known = [v for v in per.values() if v is not None]
    per["total"] = sum(known) if known else None
    return per


def _busy_share(used: dict[str, float | None], elapsed: float) -> float | None:
    """The share of the machine's cores the measured processes kept busy."""
    known = [v for v in used.values() if v is not None]
    cores = os.cpu_count() or 1
    return sum(known) / (cores * elapsed) if known and elapsed > 0 else None


@dataclass
class Measurement:
    """The three phases, run again and again on the same servers: answers, CPU and time add
    up over the runs, and each run's booking ÷ trivial throughput is kept on its own."""

    bases: list[str]
    world: World
    meter: CpuMeter
    phases: dict[str, tuple[Action, float, str]]
    tallies: dict[str, dict[str, Tally]] = field(default_factory=dict)
    cpu: dict[str, dict[str, float | None]] = field(default_factory=dict)
    elapsed: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    ratios: list[float] = field(default_factory=list)
    double_bookings: int = 0

    def phase(self, name: str) -> float:
        """Run one phase; the requests per second its own endpoint was answered in this run."""
        action, seconds, endpoint = self.phases[name]
        tallies = self.tallies.setdefault(name, defaultdict(Tally))
        before = _successes(tallies[endpoint], endpoint)
        took, used = _phase(action, self.bases, self.world, seconds, tallies, meter=self.meter)
        assert used is not None  # noqa: S101 (a meter was given)
        # Summed part by part; a part unread in any run stays unknown.
        total = self.cpu.get(name, dict.fromkeys(used, 0.0))
        self.cpu[name] = {
            part: None if value is None or total.get(part) is None else (total[part] or 0) + value
            for part, value in used.items()
        }
        self.elapsed[name] += took
        # Bookings made, not answers: a refusal (409, 429, 5xx) or a failed request is quick
        # and would make the endpoint look faster than it books.
        return (_successes(tallies[endpoint], endpoint) - before) / took

    def run_once(self) -> None:
        """The three phases, then the double-booking check, then the run's bookings undone."""
        marks = table_marks()
        self.world.shares_taken.clear()  # the same patients book in every run
        trivial = self.phase("trivial_only")
        booking = self.phase("booking_only")
        self.phase("busiest_hour_mixed")
        self.ratios.append(booking / trivial)
        self.double_bookings += _double_bookings()
        undo_since(marks)

    def summaries(self, name: str) -> dict[str, dict[str, Any]]:
        """Each endpoint of a phase over every run."""
        return _summaries(self.tallies[name], self.elapsed[name])


def _runs_note(repeats: int, phases: dict[str, tuple[Action, float, str]]) -> str:
    """What was run, each phase with its own length (the mixed hour is longer)."""
    lengths = ", ".join(
        f"{name.replace('_', ' ')} {seconds:.0f} s" for name, (_, seconds, _) in phases.items()
    )
    return (
        f"{repeats} runs of the phases ({lengths}); the ratio is the median of the runs', "
        "latencies are pooled over the runs, and each run's bookings are removed after it"
    )


def run(runs: int) -> dict[str, Any]:
    """Build the chain, start the servers, run the three phases ``runs`` times (at most
    MAX_RUNS), undoing each run's bookings after it (after django.setup())."""
    from django.conf import settings  # noqa: PLC0415
    from django.core.management import call_command  # noqa: PLC0415
    from django.db import connection  # noqa: PLC0415
    from django.utils import timezone  # noqa: PLC0415

    call_command("migrate", verbosity=0)
    world = _build(timezone.localdate())
    connection.close()
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        # The desk's session was signed here: the servers must share this process's key.
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "MICRONEEDLING_SSL_REDIRECT": "0",
        # One address stands for every patient here: the per-address limit would be the
        # bottleneck, not the app.
        "MICRONEEDLING_RATE_BOOKING": "1000000",
    }
    env.pop("BENCH_RESET_DATABASE", None)
    servers = _servers(env)
    seconds = PHASE_SECONDS
    repeats = max(1, min(runs, MAX_RUNS))
    measured = Measurement(
        bases=[base for _, base in servers],
        world=world,
        meter=CpuMeter(
            server_groups=[process.pid for process, _ in servers],
            database_is_local=connection.settings_dict.get("HOST")
            in ("", "127.0.0.1", "localhost"),
            database_name=connection.settings_dict["NAME"],
        ),
        phases={
            "trivial_only": (_health, seconds, "health"),
            "booking_only": (_book, seconds, "book_course"),
            "busiest_hour_mixed": (_mixed, seconds * 2, "book_course"),
        },
    )
    try:
        reference_before = machine_reference()
        _phase(_health, measured.bases, world, 3.0, defaultdict(Tally))  # warm both servers up
        for _ in range(repeats):
            measured.run_once()
        reference_after = machine_reference()
    finally:
        _stop_servers(servers)
    trivial, booking, mixed = (measured.summaries(name) for name in measured.phases)
    errors = sum(
        endpoint.get("server_errors", 0) + endpoint.get("connection_errors", 0)
        for phase in (trivial, booking, mixed)
        for endpoint in phase.values()
    )
    unsuccessful = sum(
        endpoint.get("unsuccessful", 0)
        for phase in (trivial, booking, mixed)
        for endpoint in phase.values()
    )
    cpu = measured.cpu
    health_cost = _cpu_per_request(cpu["trivial_only"], trivial["health"]["requests"])
    booking_cost = _cpu_per_request(cpu["booking_only"], booking["book_course"]["requests"])
    ratio = statistics.median(measured.ratios)
    return {
        "engine": connection.vendor,
        "machine_reference": {"before": reference_before, "after": reference_after},
        "servers": SERVERS,
        "clients": CLIENTS,
        "client_processes": PROCESSES,
        "phase_seconds": {name: length for name, (_, length, _) in measured.phases.items()},
        "runs": repeats,
        # Each phase's answers over every run: requests per second over the phase's total time.
        "trivial_only": trivial,
        "booking_only": booking,
        "busiest_hour_mixed": mixed,
        "booking_to_trivial_throughput": ratio,
        "booking_to_trivial_throughput_runs": measured.ratios,
        # Where the machine's CPU went in each phase, and per request of the two lone phases:
        # with every core busy, the throughput ratio cannot exceed the ratio of these costs.
        "cpu_seconds": cpu,
        # Near 1: the phase used every core (bounded by CPU, not by a lock or a queue).
        "cpu_busy_share": {
            name: _busy_share(cpu[name], measured.elapsed[name]) for name in measured.phases
        },
        "cpu_ms_per_request": {"health": health_cost, "book_course": booking_cost},
        "cpu_cost_ratio_trivial_to_booking": (
            health_cost["total"] / booking_cost["total"]
            if health_cost["total"] and booking_cost["total"]
            else None
        ),
        "target_ratio": 0.5,
        "meets_target": ratio >= 0.5,
        "double_bookings": measured.double_bookings,
        "server_and_connection_errors": errors,
        "unsuccessful_answers": unsuccessful,
        "runs_note": _runs_note(repeats, measured.phases),
    }

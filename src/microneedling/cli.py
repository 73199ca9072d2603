"""The ``microneedling`` command: JSON in, JSON out, for everything a person runs.

Bad input never produces a traceback: it exits with status 2 and one line on stderr that
names the field and the problem, so scripts and people can both act on it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError

from microneedling.core.courses import plan_course
from microneedling.core.errors import InputError, PackError
from microneedling.core.knowledge import load_pack
from microneedling.core.knowledge.docs import render_knowledge_doc
from microneedling.core.screening import EARLIEST_DATE, LATEST_DATE, Intake, screen
from microneedling.core.triage import TriageReport, triage

EXIT_BAD_INPUT = 2
M = TypeVar("M", bound=BaseModel)


class UsageError(Exception):
    """Bad command-line input; the message is the one line printed on stderr."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors on one line instead of a usage block."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


#: The longest API token label (ApiToken.label).
LABEL_LENGTH = 100


def _new_file(field: str) -> Callable[[str], Path]:
    """A file the command will write when it is done: checked before anything else runs,
    so a bad name cannot fail after the database has changed."""

    def parse(text: str) -> Path:
        path = Path(text)
        if path.is_dir():
            raise UsageError(f"{field}: {text} is a folder, not a file")
        if not path.parent.is_dir():
            raise UsageError(f"{field}: {path.parent} is not a folder")
        if not os.access(path if path.exists() else path.parent, os.W_OK):
            raise UsageError(f"{field}: {text} cannot be written")
        return path

    return parse


def _folder(field: str) -> Callable[[str], Path]:
    """A folder that exists (checked before a long run, not after it)."""

    def parse(text: str) -> Path:
        if not Path(text).is_dir():
            raise UsageError(f"{field}: {text} is not a folder")
        return Path(text)

    return parse


def _label(text: str) -> str:
    """A token's label, as long as the database keeps one."""
    if len(text) > LABEL_LENGTH:
        raise UsageError(f"--label: at most {LABEL_LENGTH} characters, not {len(text)}")
    return text


def _date(field: str) -> Callable[[str], dt.date]:
    """A date option within the range an intake accepts (the engines' arithmetic stays on
    the calendar, and no clinic plans or closes anything outside it)."""

    def parse(text: str) -> dt.date:
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            raise UsageError(f"{field}: {text!r} is not a valid date (YYYY-MM-DD)") from None
        if not EARLIEST_DATE <= day <= LATEST_DATE:
            raise UsageError(
                f"{field}: {text} is not between {EARLIEST_DATE.isoformat()} "
                f"and {LATEST_DATE.isoformat()}"
            )
        return day

    return parse


def _whole(field: str, least: int, most: int | None = None) -> Callable[[str], int]:
    """A whole-number option from ``least`` up to ``most`` (no upper bound when None)."""
    bounds = f"at least {least}" + ("" if most is None else f" and at most {most}")

    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise UsageError(f"{field}: {text!r} is not a whole number ({bounds})") from None
        if number < least or (most is not None and number > most):
            raise UsageError(f"{field}: {number} is out of range (must be {bounds})")
        return number

    return parse


#: The longest pause between a worker's polls: a reminder can be late by this much, and
#: ``time.sleep`` overflows on huge numbers (1e308) and refuses nan.
MAX_INTERVAL_S = 3600.0


def _interval(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= MAX_INTERVAL_S:  # also false for nan
        raise UsageError(
            f"--interval: {text!r} is not a number of seconds more than 0 "
            f"and at most {MAX_INTERVAL_S:g}"
        )
    return seconds


#: A host name as Django's runserver and gunicorn accept it: labels of letters, digits and
#: hyphens separated by dots.
_HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*$")


def _host(text: str) -> str:
    """An IP address or host name to listen on; IPv6 comes back in brackets for ``host:port``."""
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        # Dotted digits that are not an address (999.1.1.1) would fail only when binding.
        if _HOST_NAME.match(text) and not re.fullmatch(r"[\d.]+", text):
            return text
        raise UsageError(f"--host: {text!r} is not an IP address or host name") from None
    return f"[{address}]" if address.version == 6 else str(address)


def _decode(data: bytes, where: str) -> str:
    """Text from UTF-8 bytes; otherwise one line saying where the first bad byte is."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise UsageError(
            f"{where}: not UTF-8 text (line {line}, byte {error.start}); save it as UTF-8"
        ) from None


def _print(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _read_model(source: str, model: type[M]) -> M:
    """Read JSON from a file or ``-`` (stdin) and validate it, naming the field on error."""
    try:
        if source == "-":
            stdin = getattr(sys.stdin, "buffer", None)
            text = _decode(stdin.read(), "input") if stdin else sys.stdin.read()
        else:
            text = _decode(Path(source).read_bytes(), source)
    except OSError as error:
        raise UsageError(f"{source}: cannot read file ({error.strerror})") from None
    except UnicodeDecodeError:  # a text stdin that was not UTF-8 after all
        raise UsageError("input: not UTF-8 text; send it as UTF-8") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(
            f"input: malformed JSON at line {error.lineno} column {error.colno}: {error.msg}"
        ) from None
    except RecursionError:
        raise UsageError("input: JSON nested too deeply") from None
    except ValueError:  # the only other: an integer longer than Python converts (4300 digits)
        raise UsageError("input: unreadable JSON (a number has too many digits)") from None
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "input"
        raise UsageError(f"{where}: {first['msg']}") from None


def _cmd_pack(args: argparse.Namespace) -> int:
    pack = load_pack()
    if args.pack_command == "check":
        data = pack.data
        _print(
            {
                "valid": True,
                "version": pack.version,
                "sources": len(data.sources),
                "entries": len(pack.entry_ids),
                "rules": len(data.rules),
                "indications": len(data.indications),
                "seed_statements": len(data.seed_statements),
            }
        )
    elif args.pack_command == "codes":
        codes = {kind: sorted(entries) for kind, entries in pack.codes.items()}
        codes["areas"] = sorted(pack.areas)
        codes["indications"] = sorted(pack.indications)
        codes["symptoms"] = sorted(pack.symptoms)
        codes["medication_classes"] = sorted(pack.medication_classes)
        _print(codes)
    else:
        sys.stdout.write(render_knowledge_doc(pack))
    return 0


def _cmd_screen(args: argparse.Namespace) -> int:
    if args.schema:
        _print(Intake.model_json_schema())
        return 0
    if args.file is None:
        raise UsageError("file: give an intake file or - for standard input")
    intake = _read_model(args.file, Intake)
    _print(screen(intake, load_pack()).to_dict())
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    today = args.today or dt.datetime.now(dt.UTC).date()
    plan = plan_course(
        pack=load_pack(),
        indications=args.indication,
        first_session=args.first_session,
        fitzpatrick=args.fitzpatrick,
        areas=args.area,
        done=args.done or (),
        as_of=today,
    )
    _print(plan.to_dict())
    return 0


def _cmd_triage(args: argparse.Namespace) -> int:
    if args.schema:
        _print(TriageReport.model_json_schema())
        return 0
    if args.file is None:
        raise UsageError("file: give a report file or - for standard input")
    report = _read_model(args.file, TriageReport)
    _print(triage(report, load_pack()).to_dict())
    return 0


def _bench_command(args: argparse.Namespace) -> str:
    """The command line that gives the page: every option that shaped its figures."""
    parts = ["microneedling bench"]
    if args.only:
        parts.append(f"--only {args.only}")
    parts.append(f"--runs {args.runs} --size {args.size}")
    parts.append(f"--write-docs {args.write_docs}")
    return " ".join(parts)


def _cmd_bench(args: argparse.Namespace) -> int:
    from microneedling.bench.runner import run_benchmarks  # noqa: PLC0415 - heavy, only when asked

    results = run_benchmarks(only=args.only, runs=args.runs, size=args.size)
    if args.write_docs:
        from microneedling.bench.report import write_report  # noqa: PLC0415

        page = write_report(results, Path(args.write_docs), _bench_command(args))
        sys.stdout.write(f"wrote {page}\n")
        return 0
    _print(results)
    return 0


def _django() -> None:
    """Configure Django for the commands that use the database (not for the pure engines)."""
    import os  # noqa: PLC0415

    import django  # noqa: PLC0415

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "microneedling.config.settings")
    django.setup()


def _add_backup_commands(commands: Any) -> None:
    backup = commands.add_parser("backup", help="copy the live database to FILE (consistent)")
    backup.add_argument("file")
    backup.set_defaults(handler=_cmd_backup)
    restore = commands.add_parser("restore", help="replace the database with backup FILE")
    restore.add_argument("file")
    restore.add_argument("--yes", action="store_true", help="I have stopped the app servers")
    restore.set_defaults(handler=_cmd_restore)


def _cmd_backup(args: argparse.Namespace) -> int:
    _django()
    from microneedling.backups import database_backup  # noqa: PLC0415

    _print(asdict(database_backup(target=Path(args.file))))
    return 0


def _cmd_restore(args: argparse.Namespace) -> int:
    if not args.yes:
        raise UsageError("--yes: restoring replaces every row; stop the app first, then say so")
    _django()
    from microneedling.backups import database_restore  # noqa: PLC0415

    report = database_restore(source=Path(args.file))
    _print(asdict(report))
    if report.migrations_to_apply:
        # An older backup: the code would fail on tables and columns it does not have yet.
        sys.stderr.write(
            f"microneedling: the backup predates {report.migrations_to_apply} migration(s) of "
            "this version: run `microneedling migrate` before starting the app\n"
        )
    return 0


def _add_retention_command(commands: Any) -> None:
    retention = commands.add_parser(
        "retention", help="erase closed records whose retention has run out (dry run first)"
    )
    retention.add_argument("--apply", action="store_true", help="erase (default: only count)")
    retention.set_defaults(handler=_cmd_retention)


def _cmd_retention(args: argparse.Namespace) -> int:
    """Count, or with --apply erase, the records due; prints counts only (no names)."""
    _django()
    from django.utils import timezone  # noqa: PLC0415

    from microneedling.patients.closure import records_erase_due  # noqa: PLC0415

    report = records_erase_due(today=timezone.localdate(), apply=args.apply)
    verb = "erased" if args.apply else "due for erasure (run with --apply)"
    sys.stdout.write(f"{report.patients} closed records {verb}, {report.photos} photos\n")
    return 0


def _add_check_command(commands: Any) -> None:
    check = commands.add_parser("check", help="Django's system checks and the project's")
    check.add_argument("--deploy", action="store_true", help="also the production checks")
    check.set_defaults(handler=_cmd_check)


def _cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 when no check fails (warnings are printed), 1 otherwise."""
    _django()
    from django.core.management import call_command  # noqa: PLC0415
    from django.core.management.base import SystemCheckError  # noqa: PLC0415

    try:
        call_command("check", deploy=args.deploy, fail_level="WARNING" if args.deploy else "ERROR")
    except SystemCheckError as failed:
        sys.stderr.write(f"{failed}\n")
        return 1
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.engines:
        from microneedling.demo import engines_demo  # noqa: PLC0415 - only when asked

        sys.stdout.write(engines_demo())
        return 0
    _django()
    from django.core.management import call_command  # noqa: PLC0415
    from django.utils import timezone  # noqa: PLC0415

    from microneedling.demo_clinic import demo_is_loaded, load_demo  # noqa: PLC0415

    call_command("migrate", verbosity=0)
    if demo_is_loaded():
        if not args.if_empty:
            raise UsageError("demo: the database already holds a clinic (use --if-empty)")
        sys.stdout.write("The demo clinic is already loaded.\n")
        return 0
    counts = load_demo(today=timezone.localdate())
    _print(counts)
    return 0


def _cmd_migrate(_: argparse.Namespace) -> int:
    _django()
    from django.core.management import call_command  # noqa: PLC0415

    call_command("migrate", verbosity=1)
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    if args.workers is not None:
        return _serve_production(args)
    _django()
    from django.core.management import call_command  # noqa: PLC0415

    address = f"{args.host}:{args.port}"
    sys.stdout.write(
        f"Microneedling Clinic on http://{address}/\n"
        f"  API and its OpenAPI document: http://{address}/api/v1/docs, "
        f"http://{address}/api/v1/openapi.json\n"
        f"  Locations near a ZIP code:   http://{address}/api/v1/locations?zip=78209\n"
        f"  Patients start here:         http://{address}/ (sign up at /my/sign-up/)\n"
        f"  Front desk and providers:    http://{address}/desk/ (the demo printed a sign-in)\n"
        f"  FHIR R4 (bearer token):      http://{address}/fhir/R4/metadata\n"
        f"  Staff admin:                 http://{address}/admin/\n"
        + (
            "  Messages go out from a worker in this process; without EMAIL_HOST each email\n"
            "  is written as a file under data/mail/.\n"
            if args.worker
            else "  Messages wait for `microneedling worker`.\n"
        )
    )
    sys.stdout.flush()
    from microneedling.config.runtime import settle_after_startup  # noqa: PLC0415

    settle_after_startup()
    if args.worker:
        # The one-process setup: messages go out without a separate `microneedling worker`.
        import threading  # noqa: PLC0415

        from microneedling.notifications.worker import worker_run  # noqa: PLC0415

        threading.Thread(
            target=worker_run, kwargs={"in_thread": True}, daemon=True, name="tasks"
        ).start()
    call_command("runserver", address, use_reloader=False)
    return 0


def _serve_production(args: argparse.Namespace) -> int:
    """Gunicorn with ``--workers`` processes and ``--task-workers`` task workers, until a
    signal stops it; the task workers are stopped with it."""
    import signal  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    tasks = [
        subprocess.Popen([sys.executable, "-m", "microneedling.cli", "worker"])
        for _ in range(args.task_workers)
    ]
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "microneedling.config.wsgi:application",
        f"--workers={args.workers}",
        f"--bind={args.host}:{args.port}",
        f"--timeout={args.timeout}",
        "--graceful-timeout=20",
        # The path without its query string: queries can carry personal details.
        "--access-logfile=-",
        '--access-logformat=%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms',
    ]
    sys.stdout.write(
        f"Microneedling Clinic on http://{args.host}:{args.port}/ with {args.workers} app "
        f"worker(s) and {args.task_workers} task worker(s)\n"
    )
    sys.stdout.flush()
    server = subprocess.Popen(command)  # noqa: S603
    stop = lambda number, frame: server.send_signal(signal.SIGTERM)  # noqa: E731
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        code = server.wait()
    finally:
        for task in tasks:
            task.terminate()
        for task in tasks:
            task.wait(timeout=30)
    return code


def _cmd_worker(args: argparse.Namespace) -> int:
    _django()
    from microneedling.config.runtime import settle_after_startup  # noqa: PLC0415
    from microneedling.notifications.worker import worker_run  # noqa: PLC0415

    settle_after_startup()
    worker_run(interval=args.interval, batch=args.batch, max_tasks=args.max_tasks)
    return 0


class _ProgressBar:
    """Progress on stderr: a bar redrawn in place on a terminal, a line per step otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.shown: tuple[str, int] = ("", -1)

    def __call__(self, phase: str, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        step = percent if self.tty else percent // 10 * 10
        if (phase, step) == self.shown:
            return
        self.shown = (phase, step)
        bar = "#" * (percent // 5) + "." * (20 - percent // 5)
        end = "\r" if self.tty and done < total else "\n"
        sys.stderr.write(f"{phase:<9} [{bar}] {done}/{total} {percent}%{end}")
        sys.stderr.flush()


def _rehoming_output(args: argparse.Namespace, report: Any) -> int:
    from microneedling.scheduling.rehoming import (  # noqa: PLC0415
        rehoming_report_audit,
        report_csv,
    )

    if args.csv or args.json:
        # The CSV and the JSON name every patient moved or stuck: audited, as the desk's
        # report is, before anything is written out. No account stands behind a shell, so
        # the event says who ran the command as the machine knows them.
        rehoming_report_audit(
            actor=None,
            appointment_ids=[m.appointment_id for m in report.moves]
            + [s.appointment_id for s in report.stuck],
            details={"via": "command line", "os_user": _os_user(), "operation": report.operation},
        )
    if args.csv:
        _write_private(args.csv, report_csv(report.as_dict()))
    if args.json:
        _print(report.as_dict())
        return 0
    summary = report.summary()
    verb = "Moved" if report.applied else "Would move"
    sys.stdout.write(
        f"{verb} {summary['rehomed']} of {summary['affected']} visits "
        f"({summary['share_rehomed']:.0%}); mean distance {summary['mean_distance_km']:.1f} km, "
        f"mean shift {summary['mean_shift_days']:.2f} days; "
        f"{summary['stuck']} could not be re-homed.\n"
    )
    for stuck in report.stuck[:20]:
        sys.stdout.write(f"  visit {stuck.appointment_id}: {stuck.reason}\n")
    if summary["violations"]:
        sys.stdout.write(
            "Not applied, the plan broke a rule: " + "; ".join(summary["violations"][:5]) + "\n"
        )
        return 1
    return 0


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable and writable by this account only: the file names
    patients and their visits, and the usual umask (022) would let every account read it."""
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(handle, 0o600)  # a file that was there already keeps its mode otherwise
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)


def _os_user() -> str:
    """The account running this command, as the operating system names it."""
    import getpass  # noqa: PLC0415

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container, say)
        return f"uid {os.getuid()}"


#: The option or argument of the chain commands that gives what a refusal names (its
#: ``field``), so the message points at what to change on the command line.
_REHOMING_OPTIONS = {
    "from_date": "--from",
    "until": "--until",
    "to": "--to",
    "location": "LOCATION",
    "provider": "PROVIDER",
}


def _rehoming_refused(error: Any, default: str) -> UsageError:
    """A refused closure or move as the usage error naming the command's own option."""
    option = _REHOMING_OPTIONS.get(error.field or "", default)
    return UsageError(f"{option}: {error.message}")


def _cmd_close_location(args: argparse.Namespace) -> int:
    _django()
    from microneedling.core.errors import BookingRefused  # noqa: PLC0415
    from microneedling.directory.models import Location  # noqa: PLC0415
    from microneedling.scheduling.rehoming import location_close  # noqa: PLC0415

    location = Location.objects.filter(slug=args.location).first()
    if location is None:
        raise UsageError(f"LOCATION: no location with the slug {args.location!r}")
    try:
        report = location_close(
            location=location,
            from_date=args.from_date,
            until=args.until,
            actor=None,
            apply=not args.dry_run,
            progress=_ProgressBar(),
        )
    except BookingRefused as error:
        raise _rehoming_refused(error, "LOCATION") from None
    return _rehoming_output(args, report)


def _cmd_move_provider(args: argparse.Namespace) -> int:
    _django()
    from microneedling.core.errors import BookingRefused  # noqa: PLC0415
    from microneedling.directory.models import Location, Provider  # noqa: PLC0415
    from microneedling.scheduling.rehoming import provider_move  # noqa: PLC0415

    # ASCII digits only: str.isdigit() also accepts "²", which int() then refuses.
    found = (
        Provider.objects.filter(pk=int(args.provider))
        if args.provider.isascii() and args.provider.isdigit()
        else Provider.objects.filter(display_name=args.provider)
    )
    if found.count() != 1:
        raise UsageError(f"PROVIDER: no single provider with the id or name {args.provider!r}")
    location = Location.objects.filter(slug=args.to).first()
    if location is None:
        raise UsageError(f"--to: no location with the slug {args.to!r}")
    try:
        report = provider_move(
            provider=found.get(),
            to_location=location,
            from_date=args.from_date,
            actor=None,
            apply=not args.dry_run,
            progress=_ProgressBar(),
        )
    except BookingRefused as error:
        raise _rehoming_refused(error, "--to") from None
    return _rehoming_output(args, report)


def _cmd_import(args: argparse.Namespace) -> int:
    if not (args.patients or args.providers or args.appointments):
        raise UsageError("import: give at least one of --patients, --providers, --appointments")
    texts = {}
    for name in ("patients", "providers", "appointments"):
        path = getattr(args, name)
        try:
            texts[name] = _decode(Path(path).read_bytes(), f"--{name}: {path}") if path else None
        except OSError as error:
            raise UsageError(f"--{name}: cannot read {path} ({error.strerror})") from None
        if path and not (texts[name] or "").strip():
            raise UsageError(f"--{name}: {path} is empty (a header line at least)")
    _django()
    from microneedling.directory.models import Organization  # noqa: PLC0415
    from microneedling.interop.importer import clinic_import  # noqa: PLC0415

    orgs = Organization.objects.all()
    if args.organization:
        orgs = orgs.filter(slug=args.organization)
    if orgs.count() != 1:
        raise UsageError("--organization: name the organisation's slug (there is not just one)")
    service_map = {}
    for item in args.map_service or []:
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            raise UsageError(f"--map-service: {item!r} is not OLD=NEW")
        service_map[old] = new
    report = clinic_import(
        organization=orgs.get(),
        patients_csv=texts["patients"],
        providers_csv=texts["providers"],
        appointments_csv=texts["appointments"],
        service_map=service_map,
        apply=not args.dry_run,
        # A shell has no account behind it: the event says who brought the records in as
        # the machine knows them, as the re-homing commands' events do.
        audit_details={"via": "command line", "os_user": _os_user()},
    )
    if args.json:
        _print(report.as_dict())
    else:
        verb = "Imported" if report.applied else "Checked"
        sys.stdout.write(
            f"{verb}: {report.patients} patients, {report.providers} providers, "
            f"{report.appointments} appointments; {len(report.problems)} problems.\n"
        )
        if report.matched or report.already_booked:
            sys.stdout.write(
                f"Already here: {report.matched} patients or providers (matched, not "
                f"created again), {report.already_booked} visits (skipped).\n"
            )
        if report.too_soon:
            sys.stdout.write(
                f"Kept at their agreed times: {report.too_soon} treatments within the shortest "
                "interval of another treatment of the same skin; a clinician should review them.\n"
            )
    for problem in report.problems[:50]:
        sys.stderr.write(f"microneedling: {problem}\n")
    if report.problems:
        sys.stderr.write("microneedling: nothing was written\n")
        return EXIT_BAD_INPUT
    return 0


def _token_id(text: str) -> int:
    """A token's id as ``--list`` shows it ("#12" or "12")."""
    from microneedling.core.ids import is_record_id  # noqa: PLC0415

    digits = text.removeprefix("#")
    if not is_record_id(digits):
        raise argparse.ArgumentTypeError(f"{text!r} is not a token id such as 12")
    return int(digits)


def _cmd_token(args: argparse.Namespace) -> int:
    _django()
    from django.contrib.auth import get_user_model  # noqa: PLC0415

    from microneedling.accounts.models import ApiToken  # noqa: PLC0415
    from microneedling.accounts.services import api_token_issue, api_token_revoke  # noqa: PLC0415
    from microneedling.core.errors import InputError  # noqa: PLC0415

    user = get_user_model().objects.filter(username=args.user).first()
    if user is None:
        raise UsageError(f"--user: no user named {args.user!r}")
    if args.list:
        # Ids, labels and dates only: the secrets were never kept.
        for token in ApiToken.objects.filter(user=user).order_by("pk"):
            if token.revoked_at:
                state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}"
            elif token.expires_at:
                state = f"expires {token.expires_at:%Y-%m-%d %H:%M}"
            else:
                state = "working"
            sys.stdout.write(f"#{token.pk}\t{token.created_at:%Y-%m-%d}\t{state}\t{token.label}\n")
        return 0
    if args.revoke is not None or args.revoke_all:
        try:
            stopped = api_token_revoke(user=user, actor=None, token_id=args.revoke)
        except InputError as error:
            raise UsageError(f"--revoke: {error.problem}") from None
        sys.stdout.write(f"{stopped} token(s) of {user.username} no longer work\n")
        return 0
    try:
        secret = api_token_issue(user=user, label=args.label, days=args.days)
    except InputError as error:
        raise UsageError(f"--days: {error.problem}") from None
    sys.stdout.write(secret + "\n")
    return 0


def _add_rehoming_commands(commands: Any) -> None:
    """The chain operations: closing a location, moving a provider."""
    close = commands.add_parser(
        "close-location", help="close a location and re-home its future visits"
    )
    close.add_argument("location", metavar="LOCATION", help="the location's slug")
    close.add_argument("--from", dest="from_date", type=_date("--from"), required=True)
    close.add_argument("--until", type=_date("--until"), help="last closed day (temporary)")
    move = commands.add_parser(
        "move-provider", help="move a provider to another location and their visits with them"
    )
    move.add_argument("provider", metavar="PROVIDER", help="the provider's id or name")
    move.add_argument("--to", required=True, help="the new location's slug")
    move.add_argument("--from", dest="from_date", type=_date("--from"), required=True)
    for operation, handler in ((close, _cmd_close_location), (move, _cmd_move_provider)):
        operation.add_argument("--dry-run", action="store_true", help="preview, change nothing")
        operation.add_argument("--json", action="store_true", help="every move as JSON")
        operation.add_argument(
            "--csv", metavar="FILE", type=_new_file("--csv"), help="also write every move as CSV"
        )
        operation.set_defaults(handler=handler)


def _add_import_command(commands: Any) -> None:
    """Moving in from another system."""
    importing = commands.add_parser(
        "import", help="import patients, providers and future visits from CSV files"
    )
    importing.add_argument("--organization", help="the organisation's slug")
    importing.add_argument("--patients", metavar="FILE")
    importing.add_argument("--providers", metavar="FILE")
    importing.add_argument("--appointments", metavar="FILE")
    importing.add_argument(
        "--map-service", action="append", metavar="OLD=NEW", help="the old system's service name"
    )
    importing.add_argument("--dry-run", action="store_true", help="check every row, write none")
    importing.add_argument("--json", action="store_true")
    importing.set_defaults(handler=_cmd_import)


def _add_serving_commands(commands: Any) -> None:
    serve = commands.add_parser("serve", help="serve the clinic (development server)")
    serve.add_argument("--host", type=_host, default="127.0.0.1")
    serve.add_argument("--port", type=_whole("--port", 1, 65535), default=8000)
    serve.add_argument(
        "--no-worker",
        dest="worker",
        action="store_false",
        help="do not run background tasks in this process (run `microneedling worker`)",
    )
    serve.add_argument(
        "--workers",
        type=_whole("--workers", 1),
        default=None,
        help="production: gunicorn with this many app processes (see docs/deploy.md)",
    )
    serve.add_argument(
        "--task-workers",
        type=_whole("--task-workers", 0),
        default=1,
        help="with --workers: task worker processes",
    )
    # Gunicorn restarts a worker silent this long; 0 (never) would hide a stuck request.
    serve.add_argument(
        "--timeout",
        type=_whole("--timeout", 1, 86400),
        default=30,
        help="with --workers: seconds",
    )
    serve.set_defaults(handler=_cmd_serve)

    worker = commands.add_parser("worker", help="run background tasks (messages); any number")
    worker.add_argument("--interval", type=_interval, default=0.5, help="seconds between polls")
    worker.add_argument("--batch", action="store_true", help="exit when no task is ready")
    worker.add_argument(
        "--max-tasks", type=_whole("--max-tasks", 1), default=None, help="exit after this many"
    )
    worker.set_defaults(handler=_cmd_worker)


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    parser = _Parser(prog="microneedling", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    pack = commands.add_parser("pack", help="check or list the knowledge pack")
    pack.add_argument("pack_command", choices=["check", "codes", "docs"])
    pack.set_defaults(handler=_cmd_pack)

    screen_cmd = commands.add_parser("screen", help="screen an intake (JSON file or -)")
    screen_cmd.add_argument("file", nargs="?")
    screen_cmd.add_argument("--schema", action="store_true", help="print the intake schema")
    screen_cmd.set_defaults(handler=_cmd_screen)

    plan = commands.add_parser("plan", help="plan or re-plan a course")
    plan.add_argument("--indication", action="append", required=True)
    plan.add_argument("--first-session", type=_date("--first-session"), required=True)
    plan.add_argument("--fitzpatrick", type=int, choices=range(1, 7), metavar="1-6")
    plan.add_argument("--area", action="append", help="treatment area (repeatable)")
    plan.add_argument("--done", type=_date("--done"), nargs="+", help="dates of done sessions")
    plan.add_argument("--today", type=_date("--today"), help="plan as of this day")
    plan.set_defaults(handler=_cmd_plan)

    triage_cmd = commands.add_parser("triage", help="triage a side-effect report (JSON or -)")
    triage_cmd.add_argument("file", nargs="?")
    triage_cmd.add_argument("--schema", action="store_true", help="print the report schema")
    triage_cmd.set_defaults(handler=_cmd_triage)

    bench = commands.add_parser("bench", help="run the benchmarks")
    bench.add_argument(
        "--only",
        choices=["engines", "scheduling", "notifications", "rehoming", "load"],
        default=None,
    )
    bench.add_argument("--runs", type=_whole("--runs", 1), default=7)
    bench.add_argument("--size", type=_whole("--size", 1), default=1000)
    bench.add_argument(
        "--write-docs",
        metavar="FOLDER",
        type=_folder("--write-docs"),
        help="write FOLDER/performance.md with plots",
    )
    bench.set_defaults(handler=_cmd_bench)

    demo = commands.add_parser("demo", help="load the demo clinic into the database")
    demo.add_argument("--if-empty", action="store_true", help="do nothing if data exists")
    demo.add_argument("--engines", action="store_true", help="only show the engines at work")
    demo.set_defaults(handler=_cmd_demo)

    _add_check_command(commands)

    migrate = commands.add_parser("migrate", help="create or update the database tables")
    migrate.set_defaults(handler=_cmd_migrate)

    _add_serving_commands(commands)

    _add_rehoming_commands(commands)

    _add_import_command(commands)

    _add_retention_command(commands)
    _add_backup_commands(commands)

    token = commands.add_parser(
        "token", help="issue an API token for a user, list theirs, or stop one or all"
    )
    token.add_argument("--user", required=True)
    token.add_argument("--label", default="", type=_label)
    token.add_argument(
        "--days", type=int, default=None, help="the new token stops working after this many days"
    )
    token_action = token.add_mutually_exclusive_group()
    token_action.add_argument("--list", action="store_true", help="list the user's tokens")
    token_action.add_argument(
        "--revoke", type=_token_id, metavar="ID", help="stop token ID of the user's"
    )
    token_action.add_argument(
        "--revoke-all", action="store_true", help="stop every token of the user's"
    )
    token.set_defaults(handler=_cmd_token)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    try:
        args = build_parser().parse_args(argv)
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except (UsageError, InputError) as error:
        sys.stderr.write(f"microneedling: {error}\n")
        return EXIT_BAD_INPUT
    except PackError as error:
        sys.stderr.write(f"microneedling: {str(error).replace(chr(10), '; ')}\n")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

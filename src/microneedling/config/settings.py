"""Django settings, read from the environment (nothing secret is committed).

- ``DATABASE_URL`` names a PostgreSQL server for scale-out; without it, an embedded SQLite
  file under ``MICRONEEDLING_DATA_DIR`` (default ``./data``) in WAL mode, with writers taking
  the lock at BEGIN (``transaction_mode="IMMEDIATE"``) so a check-then-insert cannot race.
- ``DJANGO_SECRET_KEY`` is required unless ``DJANGO_DEBUG`` is on (development and tests).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext

# Lets generic Django classes (admin.ModelAdmin[Location]) be subscripted at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parents[3]
DATA_DIR = Path(os.environ.get("MICRONEEDLING_DATA_DIR", BASE_DIR / "data"))


def _private_folder(path: Path) -> None:
    """Create ``path`` if need be, open to the server's own account only.

    The data folder holds the SQLite database, skin photos and the mail written to disk:
    health data, which other accounts on the machine must not read whatever their umask
    made of each file. A folder the server does not own is left as it is (a mount the
    administrator manages).
    """
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_uid == os.getuid():
        path.chmod(0o700)


DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or ("development-only-not-secret" if DEBUG else "")
if not SECRET_KEY:
    raise RuntimeError("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "microneedling.accounts",
    "microneedling.audit",
    "microneedling.directory",
    "microneedling.patients",
    "microneedling.scheduling",
    "microneedling.web",
    "microneedling.portal",
    "microneedling.aftercare",
    "microneedling.desk",
    "microneedling.charting",
    "microneedling.notifications",
    "microneedling.interop",
    "django_tasks",
    "django_tasks_db",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files straight from the app (no web server in front needed, no build step).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "microneedling.web.security.RefuseNulMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "microneedling.accounts.two_factor.StaffTwoFactorMiddleware",
    "microneedling.audit.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "microneedling.web.security.SecurityHeadersMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into its refusal page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "microneedling.config.urls"
WSGI_APPLICATION = "microneedling.config.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "microneedling.web.context.site",
            ]
        },
    }
]


def _sqlite_page_cap() -> str:
    pages = os.environ.get("MICRONEEDLING_SQLITE_MAX_PAGES", "")
    return f" PRAGMA max_page_count={int(pages)};" if pages else ""


def _databases() -> dict[str, Any]:
    url = os.environ.get("DATABASE_URL")
    if url:
        # Connections are kept for a minute and checked before reuse: after a database
        # restart the next request reconnects instead of failing on a dead socket.
        config: dict[str, Any] = dict(
            dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
        )
        config.setdefault("TEST", {})["NAME"] = os.environ.get(
            "MICRONEEDLING_TEST_DB", f"test_{config['NAME']}"
        )
        return {"default": config}
    _private_folder(DATA_DIR)
    return {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            # MICRONEEDLING_SQLITE_PATH points a process at another file (a worker that the
            # tests start against their own test database, say).
            "NAME": os.environ.get("MICRONEEDLING_SQLITE_PATH", DATA_DIR / "microneedling.sqlite3"),
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                    "PRAGMA foreign_keys=ON; PRAGMA busy_timeout=30000;" + _sqlite_page_cap()
                    # A cap on the file's size in pages (a full disk, rehearsed by the tests).
                ),
            },
            # A file, not memory: concurrency tests open several connections to it.
            "TEST": {"NAME": str(DATA_DIR / f"test-{os.getpid()}.sqlite3")},
        }
    }


DATABASES = _databases()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Who may sign in is the model backend's; what the admin site opens is the role's
# (accounts.access), through the role backend.
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username or address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "microneedling.accounts.backends.RoleBackend",
]

# Argon2id for new and changed passwords; older hashes still verify and are upgraded at the
# next sign-in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

# Sign-in throttling: five failures for one username from one address lock that pair out for
# 15 minutes (django-axes); failures are counted in the database, so every app server agrees.
AXES_FAILURE_LIMIT = int(os.environ.get("MICRONEEDLING_LOGIN_FAILURES", "5"))
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "portal/locked_out.html"
# Usernames are e-mail addresses here: axes must not write them to the log.
AXES_VERBOSE = False
AXES_SENSITIVE_PARAMETERS = ["username", "password", "email"]

# Sessions: a new key at every sign-in (Django's login() rotates it), and signed out after
# 30 minutes without a request (each request pushes the expiry on).
SESSION_COOKIE_AGE = int(os.environ.get("MICRONEEDLING_IDLE_MINUTES", "30")) * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Behind TLS (production): cookies only over HTTPS, HSTS for a year, HTTP sent to HTTPS.
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = 0 if DEBUG else 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_SSL_REDIRECT = not DEBUG and os.environ.get("MICRONEEDLING_SSL_REDIRECT", "1") == "1"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if os.environ.get("MICRONEEDLING_BEHIND_TLS_PROXY") == "1":
    # The proxy terminates TLS and says so in this header (set only by the proxy).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Uploads: photos are a few megabytes at most; larger bodies are refused before parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Stored photos and their folders: the server's account only (see _private_folder).
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
# Serve from the apps' static folders directly: `make run` needs no collectstatic step.
WHITENOISE_USE_FINDERS = True
# Uploads (skin photos) are private: kept under the data folder, never served as static
# files; only views that check who is asking hand them out.
MEDIA_ROOT = DATA_DIR / "private"
MEDIA_URL = "/private-media/"
WHITENOISE_AUTOREFRESH = DEBUG
LOGIN_URL = "portal:sign_in"
# A reset link works for an hour.
PASSWORD_RESET_TIMEOUT = 3600
# The issuer authenticator apps show next to the code.
OTP_TOTP_ISSUER = os.environ.get("MICRONEEDLING_SITE_NAME", "Microneedling Clinic")
# The admin never shows an authenticator's secret or QR code once it exists (its own views
# of them look devices up by id, unscoped).
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "web:home"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "microneedling.web.logs.RedactPersonalData"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact"]}},
    # Request bodies and SQL parameters can hold health data: never log them.
    "loggers": {"django.db.backends": {"level": "WARNING"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}

MICRONEEDLING: dict[str, Any] = {
    "SLOT_GRID_MINUTES": int(os.environ.get("MICRONEEDLING_SLOT_GRID_MINUTES", "15")),
    "MIN_NOTICE_HOURS": int(os.environ.get("MICRONEEDLING_MIN_NOTICE_HOURS", "12")),
    "BOOKING_HORIZON_DAYS": int(os.environ.get("MICRONEEDLING_BOOKING_HORIZON_DAYS", "400")),
    # Where links in messages point (the address patients reach the site at).
    "PUBLIC_URL": os.environ.get("MICRONEEDLING_PUBLIC_URL", "http://127.0.0.1:8000"),
    # Text messages: "console" prints them (the demo); "webhook" posts them to a provider.
    "SMS_BACKEND": os.environ.get("MICRONEEDLING_SMS_BACKEND", "console"),
    "SMS_WEBHOOK_URL": os.environ.get("MICRONEEDLING_SMS_WEBHOOK_URL", ""),
    "SMS_WEBHOOK_TOKEN": os.environ.get("MICRONEEDLING_SMS_WEBHOOK_TOKEN", ""),
    # A worker holds a message this long while sending it; after that another may retry it.
    "OUTBOX_LEASE_SECONDS": int(os.environ.get("MICRONEEDLING_OUTBOX_LEASE_SECONDS", "120")),
    # A failing message is retried (waits of 1, 2, 4 … minutes, at most an hour) for this
    # many hours from its first attempt, then left to staff on the dead-letter list; a cap
    # on tries may end it sooner (0: none).
    "OUTBOX_RETRY_HOURS": float(os.environ.get("MICRONEEDLING_OUTBOX_RETRY_HOURS", "24")),
    "OUTBOX_MAX_ATTEMPTS": int(os.environ.get("MICRONEEDLING_OUTBOX_MAX_ATTEMPTS", "0")),
    # Lost messages one sweep pass hands new tasks at most (the next pass takes the rest).
    "OUTBOX_SWEEP_BATCH": int(os.environ.get("MICRONEEDLING_OUTBOX_SWEEP_BATCH", "500")),
    # Proxies whose X-Forwarded-For the audit trail believes (comma-separated addresses).
    "TRUSTED_PROXIES": tuple(
        a for a in os.environ.get("MICRONEEDLING_TRUSTED_PROXIES", "").split(",") if a
    ),
    # Requests per client address and minute on the public endpoints (429 beyond).
    "RATE_LIMITS": {
        "sign_up": int(os.environ.get("MICRONEEDLING_RATE_SIGN_UP", "10")),
        "sign_in": int(os.environ.get("MICRONEEDLING_RATE_SIGN_IN", "20")),
        "booking": int(os.environ.get("MICRONEEDLING_RATE_BOOKING", "60")),
        "password_reset": int(os.environ.get("MICRONEEDLING_RATE_PASSWORD_RESET", "5")),
    },
    # Staff give a TOTP code after their password (patients do not).
    "STAFF_TWO_FACTOR": os.environ.get("MICRONEEDLING_STAFF_TWO_FACTOR", "1") == "1",
    # How long a closed account's medical records are kept: years after the last treatment,
    # and until an age for patients treated as minors. The defaults are Texas's (22 TAC
    # §165.1: seven years; minors until 21), where the demo clinic is; set your state's.
    "RETENTION": {
        "ADULT_YEARS": int(os.environ.get("MICRONEEDLING_RETENTION_YEARS", "7")),
        "MINOR_UNTIL_AGE": int(os.environ.get("MICRONEEDLING_RETENTION_MINOR_AGE", "21")),
    },
    # Minutes a break-glass grant lasts.
    "BREAK_GLASS_MINUTES": int(os.environ.get("MICRONEEDLING_BREAK_GLASS_MINUTES", "60")),
}

# Rate-limit counts and the progress of long operations (a closure's re-homing) are shared
# between processes through the cache: files under data/ on one machine, or Redis
# (MICRONEEDLING_REDIS_URL=redis://host:6379/0) when app servers run on several machines.
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["MICRONEEDLING_REDIS_URL"],
        }
        if os.environ.get("MICRONEEDLING_REDIS_URL")
        else {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    )
}

# Background work: one queue in the database, the same on SQLite and PostgreSQL; any number
# of `microneedling worker` processes take tasks from it.
TASKS = {
    "default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "messages"]}
}

# Mail goes through SMTP when a host is configured; otherwise (the demo) each mail is written
# as a file under data/mail/, where it can be read without flooding the server's console.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = os.environ.get("EMAIL_USE_TLS", "") == "true"
EMAIL_TIMEOUT = 10
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.filebased.EmailBackend"
)
EMAIL_FILE_PATH = DATA_DIR / "mail"
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "clinic@microneedling.invalid")

"""Settings, read from the environment.

Defaults are embedded so the product runs with no configuration at all:
SQLite in ``var/``, the in-memory channel layer, demo mode on, DEBUG off
(``DEBUG=1`` turns it on, for development only: its error pages show
tracebacks and settings). Production sets ``DEMO_MODE=0``, a real
``SECRET_KEY``, ``ALLOWED_HOSTS``, ``DATABASE_URL`` (PostgreSQL),
``REDIS_URL`` (channels-redis + cache) and ``TRUSTED_PROXIES``.
"""

import os
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    """A yes/no setting. Anything but the usual spellings is refused: a
    typo such as ``DEBUG=ture`` or ``DEMO_MODE=of`` must not quietly mean
    the opposite of what was meant. Empty counts as unset."""
    value = (os.environ.get(name) or "").strip().lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={os.environ[name]!r}: use 1/0, true/false, yes/no or on/off.")


def env_int(name: str, default: int, minimum: int = 0) -> int:
    value = (os.environ.get(name) or "").strip()
    try:
        number = int(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r}: expected a whole number.") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name}={number}: must be at least {minimum}.")
    return number


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Off unless asked for: a DEBUG error page shows tracebacks, settings and
# every URL pattern to anyone.
DEBUG = env_bool("DEBUG", False)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# Demo mode: short epochs, the faucet, the demo accounts.
DEMO_MODE = env_bool("DEMO_MODE", True)
# How many reverse proxies in front of the app append to X-Forwarded-For;
# 0: the header is ignored (apps.platform.ratelimit.client_ip).
TRUSTED_PROXIES = env_int("TRUSTED_PROXIES", 0)

INSTALLED_APPS = [
    "daphne",  # must come first: `runserver` becomes the ASGI server
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_htmx",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # The shared domain model (ledger, accounts, parameters) ...
    "apps.core",
    # How it runs: database backend, cache, middleware, relay, `serve`.
    "apps.platform",
    # ... and the feature apps built on it.
    "apps.accounts",
    "apps.explorer",
    "apps.api",
    "apps.marketplace",
    "apps.staking",
    "apps.governance",
    "apps.monitoring",
    "apps.settlement",
    "apps.overview",
    # For people who script: API tokens, exports, badges; and notifications.
    "apps.developer",
    "apps.notifications",
]
# The demo network (its seed, simulators, `run_demo` and the fault drills'
# commands) is installed only in demo mode: production has none of it.
if DEMO_MODE:
    INSTALLED_APPS.append("apps.demo")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions, before common: the language comes from the switcher's
    # cookie, else the browser's Accept-Language; URLs stay the same in every language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before anything reads a form: text holding a NUL is a 400 (see the class).
    "apps.platform.middleware.RefuseNul",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before the idempotency middleware: a revoked token's repeated key is refused, not replayed.
    "apps.developer.middleware.RefuseUnusableToken",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # After CSRF and authentication: a retried mutating request with a key runs once.
    "apps.platform.middleware.IdempotencyMiddleware",
]
# Under ASGI the whole chain and the view run synchronously, in one call on
# a request thread: see apps/platform/asgi_handler.py.

ROOT_URLCONF = "aethir_web.urls"
WSGI_APPLICATION = "aethir_web.wsgi.application"
ASGI_APPLICATION = "aethir_web.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.platform.context_processors.site",
            ],
            # {% idempotency_field %} in every form that changes something.
            "builtins": ["apps.platform.templatetags.idempotency"],
        },
    },
]

# --- Database ---------------------------------------------------------------
VAR_DIR = Path(os.environ.get("AETHIR_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _demo_secret_key(path: Path) -> str:
    """A key made once for this demo installation and kept in VAR_DIR, so
    sessions survive restarts and no key is shared between installations.
    Written under a temporary name and linked into place, so processes that
    start together all read the same complete key."""
    if not path.exists():
        import secrets

        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temporary.write_text(secrets.token_urlsafe(50))
        temporary.chmod(0o600)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_text().strip()


SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG:
        SECRET_KEY = "insecure-development-key-change-me-" + "x" * 32
    elif DEMO_MODE:
        SECRET_KEY = _demo_secret_key(VAR_DIR / "secret_key")
    else:
        raise ImproperlyConfigured("Set SECRET_KEY when DEBUG is off.")
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'aethir.sqlite3'}",
        conn_max_age=env_int("CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Writers take the lock when the transaction starts (no upgrade deadlocks),
    # and wait for each other instead of failing at once.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Connections are still reused across requests, through a pool (see the module).
    DATABASES["default"]["ENGINE"] = "apps.platform.sqlite_pooled"
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests use a file, not shared-cache memory: live-server tests run real
    # agents against the app from other threads, and shared-cache SQLite
    # locks whole tables instead of waiting like a file database does.
    # One file per test process, so parallel runs never share a database.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("SQLITE_TEST_NAME")
        or str(Path(tempfile.gettempdir()) / f"aethir-test-{os.getpid()}.sqlite3")
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Under ASGI a request's database work runs on one of the process's
    # request threads (apps/platform/asgi_handler.py), as many as there were
    # requests at once at the busiest moment, so persistent per-thread
    # connections (CONN_MAX_AGE) would grow with every burst until PostgreSQL
    # refuses clients. A small pool per process reuses a few instead; a
    # request waits up to `timeout` seconds for a free one.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env_int("DB_POOL_MAX", 8, minimum=1),
        "timeout": float(os.environ.get("DB_POOL_TIMEOUT", "20")),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channels and cache -----------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # A consumer waits for its next message in blocking pops of 5 s;
            # redis-py's default read timeout is also 5 s, so an idle page's
            # consumer lost that race and died. Reads may take longer here.
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
                "prefix": os.environ.get("REDIS_PREFIX", "aethir"),
            },
        }
    }
    CACHES = {
        "default": {
            # Rate-limit counters and catalogue counts only: an outage turns
            # limits off instead of failing requests (see the module).
            "BACKEND": "apps.platform.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("REDIS_PREFIX", "aethir"),
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth -------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Log-in attempts are limited per account and per client address, in every
# form that logs in (ours and the admin's): see apps.accounts.throttle.
# ModelBackend stays listed so that sessions it logged in remain valid.
AUTHENTICATION_BACKENDS = [
    "apps.accounts.backends.ThrottledModelBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_FAILURES_BEFORE_LOCKOUT = env_int("LOGIN_FAILURES_BEFORE_LOCKOUT", 10, minimum=1)
LOGIN_FAILURES_PER_ADDRESS = env_int("LOGIN_FAILURES_PER_ADDRESS", 30, minimum=1)  # any usernames, per 15 minutes
LOGIN_FAILURES_PER_ACCOUNT = env_int("LOGIN_FAILURES_PER_ACCOUNT", 50, minimum=1)  # all addresses, per hour
SIGNUPS_PER_ADDRESS_PER_HOUR = env_int("SIGNUPS_PER_ADDRESS_PER_HOUR", 3, minimum=1)
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:wallet"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
# English is the source text; Indonesian is the language the network is taught in.
LANGUAGES = [("en", "English"), ("id", "Bahasa Indonesia")]
# The compiled catalogue (django.mo) is committed next to its .po: nothing to
# compile at install or run time.
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True

# --- Static files -----------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # plotly.min.js straight from the installed plotly package (no CDN).
    "apps.platform.staticfinders.PlotlyFinder",
]
# Production (DEBUG and DEMO_MODE off) serves the hashed, compressed copies
# made by collectstatic. The demo, whether DEBUG is on or not, has WhiteNoise
# serve the files from where the finders find them: no collectstatic step.
PRODUCTION = not DEBUG and not DEMO_MODE
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

# --- Security ---------------------------------------------------------------
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    # Plotly and htmx set inline style attributes on the elements they draw.
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    # Behind a TLS-terminating reverse proxy (see README, "Production"). Not
    # for the demo, which `make run` serves on plain http://127.0.0.1.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- REST API ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First: a request carrying a personal token is judged by its scopes.
        "apps.developer.auth.PersonalTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    # JSON with size and depth limits: a 50,000-deep body is a 400, not a RecursionError.
    "DEFAULT_PARSER_CLASSES": [
        "apps.api.parsers.LimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "apps.api.schema.IdempotentAutoSchema",
    # A refused domain action (apps.core.errors) answers with its meaning's status.
    "EXCEPTION_HANDLER": "apps.api.exceptions.handle_exception",
    # Throttles identify a client as apps.platform.ratelimit.client_ip does.
    "NUM_PROXIES": TRUSTED_PROXIES,
    "DEFAULT_THROTTLE_RATES": {
        "faucet": "30/hour",
        "transfer": "120/minute",
        "agent": os.environ.get("AGENT_RATE", "600/minute"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Aethir network dashboard API",
    "DESCRIPTION": "Ledger, wallet and network data. Amounts are integer micro-ATH "
    "(1 ATH = 1,000,000 uATH), sent as strings.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "AccountKindEnum": "apps.core.models.AccountKind",
        "TxKindEnum": "apps.core.models.TxKind",
        "BucketEnum": "apps.core.models.Bucket",
        "ModuleEnum": "apps.core.models.ModuleAccount",
        "LineKindEnum": "apps.settlement.models.LineKind",
        "NodeStatusEnum": "apps.core.models.NodeStatus",
    },
}

# --- The network ------------------------------------------------------------
# Whole supply minted once at genesis, in ATH (docs/rules.md §2).
GENESIS_SUPPLY_ATH = env_int("GENESIS_SUPPLY_ATH", 42000000000, minimum=1)
FAUCET_AMOUNT_ATH = env_int("FAUCET_AMOUNT_ATH", 10000, minimum=1)
FAUCET_CLAIMS_PER_DAY = env_int("FAUCET_CLAIMS_PER_DAY", 3, minimum=1)
# Across all accounts of one client address (sign-ups are cheap).
FAUCET_CLAIMS_PER_ADDRESS_PER_DAY = env_int("FAUCET_CLAIMS_PER_ADDRESS_PER_DAY", 6, minimum=1)
# Ed25519 seed (64 hex digits) that signs a ledger checkpoint after each
# settled epoch; demo mode generates one under VAR_DIR (apps.core.checkpoints).
LEDGER_SIGNING_KEY = os.environ.get("LEDGER_SIGNING_KEY", "")
# Answers to requests sent with an Idempotency-Key are replayed this long.
IDEMPOTENCY_KEY_HOURS = env_int("IDEMPOTENCY_KEY_HOURS", 24, minimum=1)
# Raw heartbeats are kept this many epochs (per-epoch roll-ups forever);
# raw checker reports and assignments longer, for audits.
TELEMETRY_RETENTION_EPOCHS = env_int("TELEMETRY_RETENTION_EPOCHS", 60, minimum=1)
# On PostgreSQL raw heartbeats are partitioned by this many epochs, and a
# partition is dropped whole once all of it is past the retention window.
HEARTBEAT_PARTITION_EPOCHS = env_int("HEARTBEAT_PARTITION_EPOCHS", 6, minimum=1)
REPORT_RETENTION_EPOCHS = env_int("REPORT_RETENTION_EPOCHS", 2000, minimum=1)

# --- Scripting: API tokens, exports, notifications --------------------------
# Requests per personal API token, and export downloads per person.
API_TOKEN_RATE = os.environ.get("API_TOKEN_RATE", "600/minute")
EXPORTS_RATE = os.environ.get("EXPORTS_RATE", "60/hour")
# E-mail: SMTP from the environment; the console backend in demo mode.
MAILERS = {
    "default": {
        "BACKEND": os.environ.get(
            "EMAIL_BACKEND",
            "django.core.mail.backends.console.EmailBackend"
            if DEMO_MODE
            else "django.core.mail.backends.smtp.EmailBackend",
        ),
    }
}
if MAILERS["default"]["BACKEND"].endswith("smtp.EmailBackend"):
    MAILERS["default"]["OPTIONS"] = {
        "host": os.environ.get("EMAIL_HOST", "localhost"),
        "port": env_int("EMAIL_PORT", 25, minimum=1),
        "username": os.environ.get("EMAIL_HOST_USER", ""),
        "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
        "use_tls": env_bool("EMAIL_USE_TLS", False),
    }
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Aethir network <noreply@localhost>")
# Webhook targets: HTTPS on public addresses only, unless these open plain
# HTTP (development) or ranges such as 127.0.0.0/8 (tests, a local receiver).
WEBHOOKS_ALLOW_HTTP = env_bool("WEBHOOKS_ALLOW_HTTP", DEBUG)
WEBHOOKS_ALLOW_NETS = os.environ.get("WEBHOOKS_ALLOW_NETS", "")
# Tell a renter when escrow covers fewer epochs than this; holders when a
# vote closes within this many epochs.
NOTIFY_ESCROW_EPOCHS = env_int("NOTIFY_ESCROW_EPOCHS", 3, minimum=1)
NOTIFY_PROPOSAL_ENDING_EPOCHS = env_int("NOTIFY_PROPOSAL_ENDING_EPOCHS", 2, minimum=0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        # 4xx answers are logged as warnings; the demo's agents cause many expected ones.
        "django.request": {"level": os.environ.get("REQUEST_LOG_LEVEL", "WARNING")},
    },
}

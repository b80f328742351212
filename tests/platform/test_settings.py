"""Configuration from the environment, and the production checks."""

import os
import secrets
import subprocess
import sys

from django.urls import reverse


def run_manage(*args, **env):
    base = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "DATABASE_URL",
            "REDIS_URL",
            "DEBUG",
            "DEMO_MODE",
            "SECRET_KEY",
            "TRUSTED_PROXIES",
            "LEDGER_SIGNING_KEY",
        }
    }
    return subprocess.run([sys.executable, "manage.py", *args], env={**base, **env}, capture_output=True, text=True)


def test_production_configuration_passes_check_deploy_without_warnings(tmp_path):
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        DEMO_MODE="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="gpu.example.com",
        LEDGER_SIGNING_KEY=secrets.token_hex(32),
        AETHIR_VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = run_manage("check", DEBUG="0", DEMO_MODE="0", SECRET_KEY="", AETHIR_VAR_DIR=str(tmp_path))
    assert result.returncode != 0 and "Set SECRET_KEY" in result.stderr


def test_production_refuses_to_start_without_a_ledger_signing_key(tmp_path):
    production = dict(DEBUG="0", DEMO_MODE="0", SECRET_KEY=secrets.token_urlsafe(50), AETHIR_VAR_DIR=str(tmp_path))
    missing = run_manage("check", LEDGER_SIGNING_KEY="", **production)
    assert missing.returncode != 0 and "Set LEDGER_SIGNING_KEY" in missing.stderr
    malformed = run_manage("check", LEDGER_SIGNING_KEY="abc", **production)
    assert malformed.returncode != 0 and "64 hex digits" in malformed.stderr


def test_database_and_redis_urls_switch_engines(tmp_path):
    code = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE']);"
        "print(s.CHANNEL_LAYERS['default']['BACKEND']);"
        "print(s.CACHES['default']['BACKEND'])"
    )
    default = run_manage("shell", "-c", code, AETHIR_VAR_DIR=str(tmp_path)).stdout.split()[-3:]
    assert default == [
        "apps.platform.sqlite_pooled",  # SQLite, with connections reused across requests
        "channels.layers.InMemoryChannelLayer",
        "django.core.cache.backends.locmem.LocMemCache",
    ]
    scaled = run_manage(
        "shell",
        "-c",
        code,
        DATABASE_URL="postgres://u@db:5432/aethir",
        REDIS_URL="redis://cache:6379/0",
        AETHIR_VAR_DIR=str(tmp_path),
    ).stdout.split()[-3:]
    assert scaled == [
        "django.db.backends.postgresql",
        "channels_redis.core.RedisChannelLayer",
        "apps.platform.cache.ResilientRedisCache",  # rate limits survive a Redis outage
    ]


def test_csp_header_and_htmx_loaded_with_its_nonce(client, genesis):
    response = client.get(reverse("explorer:index"))
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self' 'nonce-" in csp
    nonce = csp.split("'nonce-")[1].split("'")[0]
    body = response.content.decode()
    scripts = [tag for tag in body.split("<script")[1:]]
    htmx = [tag for tag in scripts if "htmx-2.min.js" in tag.split(">")[0]]
    assert htmx and f'nonce="{nonce}"' in htmx[0].split(">")[0]
    assert all(f'nonce="{nonce}"' in tag.split(">")[0] for tag in scripts)
    # No script or stylesheet from another host: the product works offline.
    for marker in ['src="http', 'src="//', 'href="http', 'href="//']:
        assert marker not in body

"""Abuse of the public forms: password guessing (also with forged
X-Forwarded-For headers and through the admin's log-in), lockouts aimed at
someone else, sign-up spam draining the faucet; and what a stranger can
learn from error pages."""

import logging
import os
import re
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from apps.core.amounts import ath
from apps.platform.ratelimit import client_ip
from apps.platform.throttles import WindowThrottle

from ..factories import PASSWORD, UserFactory

VICTIM_IP, ATTACKER_IP, PROXY_IP = "203.0.113.7", "198.51.100.66", "10.0.0.1"


def login(username, password, *, remote=ATTACKER_IP, forwarded=None, url=None, client=None):
    client = client or Client(REMOTE_ADDR=remote)
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    response = client.post(
        url or reverse("accounts:login"), {"username": username, "password": password}, headers=headers
    )
    return client, response


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


# --- Which address is the client's --------------------------------------------


@pytest.mark.parametrize(
    "proxies, remote, forwarded, expected",
    [
        (0, ATTACKER_IP, f"{VICTIM_IP}", ATTACKER_IP),  # no proxy: the header is the client's own words
        (0, ATTACKER_IP, None, ATTACKER_IP),
        (1, PROXY_IP, f"{VICTIM_IP}, {ATTACKER_IP}", ATTACKER_IP),  # the proxy appended the real peer
        (1, PROXY_IP, ATTACKER_IP, ATTACKER_IP),
        (2, PROXY_IP, f"{VICTIM_IP}, {ATTACKER_IP}, 10.0.0.9", ATTACKER_IP),
        (1, ATTACKER_IP, None, ATTACKER_IP),  # straight to the app, past the proxy
    ],
)
def test_client_address_is_the_rightmost_untrusted_forwarded_entry(settings, proxies, remote, forwarded, expected):
    settings.TRUSTED_PROXIES = proxies
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": proxies}
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    request = RequestFactory().get("/", **meta)
    assert client_ip(request) == expected
    # The API's throttles count the same client.
    assert WindowThrottle().ident(request, None) == expected


def test_api_throttles_ignore_forwarded_for_by_default():
    request = RequestFactory().get("/", REMOTE_ADDR=ATTACKER_IP, HTTP_X_FORWARDED_FOR=VICTIM_IP)
    assert WindowThrottle().ident(request, None) == ATTACKER_IP == client_ip(request)


# --- Log-in ---------------------------------------------------------------------


def test_fresh_forwarded_for_headers_do_not_bypass_the_login_limit(user):
    client = Client(REMOTE_ADDR=ATTACKER_IP)
    for n in range(10):
        _, response = login(user.username, "wrong", client=client, forwarded=f"192.0.2.{n}")
        assert response.status_code == 200
    _, response = login(user.username, PASSWORD, client=client, forwarded="192.0.2.200")
    assert response.status_code == 429 and "Too many log-in attempts" in response.content.decode()
    assert not logged_in(client)


@pytest.mark.parametrize("proxies", [0, 1])
def test_guesses_forged_with_the_victims_address_do_not_lock_the_victim_out(user, settings, proxies):
    settings.TRUSTED_PROXIES = proxies
    # Through the proxy the attacker's forged entry is followed by the address the proxy saw.
    attacker = (
        dict(remote=PROXY_IP, forwarded=f"{VICTIM_IP}, {ATTACKER_IP}")
        if proxies
        else dict(remote=ATTACKER_IP, forwarded=VICTIM_IP)
    )
    victim = dict(remote=PROXY_IP, forwarded=VICTIM_IP) if proxies else dict(remote=VICTIM_IP)
    attacker_client = Client(REMOTE_ADDR=attacker["remote"])
    for _ in range(15):
        login(user.username, "wrong", client=attacker_client, forwarded=attacker["forwarded"])
    _, response = login(user.username, PASSWORD, client=attacker_client, forwarded=attacker["forwarded"])
    assert response.status_code == 429  # the attacker is the one locked out
    client, response = login(user.username, PASSWORD, **victim)
    assert response.status_code == 302 and logged_in(client)


def test_lockouts_grow_and_the_right_password_resets_them(user, monkeypatch):
    from apps.accounts import throttle

    now = [1_000_000.0]
    monkeypatch.setattr(throttle.time, "time", lambda: now[0])
    request = RequestFactory().post("/", REMOTE_ADDR=ATTACKER_IP)
    for _ in range(10):
        assert throttle.check_login(request, user.username) is None
        throttle.login_failed(request, user.username)
    assert 55 <= throttle.check_login(request, user.username) <= 61
    now[0] += 61
    assert throttle.check_login(request, user.username) is None
    throttle.login_failed(request, user.username)
    assert 115 <= throttle.check_login(request, user.username) <= 121  # doubled
    now[0] += 121
    throttle.login_succeeded(request, user.username)
    for _ in range(9):
        throttle.login_failed(request, user.username)
    assert throttle.check_login(request, user.username) is None  # counting starts again


def test_admin_login_is_behind_the_same_limits(genesis):
    admin = UserFactory(is_staff=True, is_superuser=True)
    client = Client(REMOTE_ADDR=ATTACKER_IP)
    for _ in range(10):
        login(admin.username, "wrong", client=client, url="/admin/login/")
    _, response = login(admin.username, PASSWORD, client=client, url="/admin/login/")
    assert response.status_code == 429 and "Too many log-in attempts" in response.content.decode()
    assert not logged_in(client)
    # From an address that has not failed, the admin still gets in.
    other, response = login(admin.username, PASSWORD, remote=VICTIM_IP, url="/admin/login/")
    assert response.status_code == 302 and logged_in(other)


def test_many_usernames_from_one_address_are_limited(user, settings):
    client = Client(REMOTE_ADDR=ATTACKER_IP)
    for n in range(settings.LOGIN_FAILURES_PER_ADDRESS):
        _, response = login(f"someone{n}", "Winter2026!", client=client)
        assert response.status_code == 200
    _, response = login(user.username, PASSWORD, client=client)
    assert response.status_code == 429 and not logged_in(client)
    other, response = login(user.username, PASSWORD, remote=VICTIM_IP)
    assert response.status_code == 302 and logged_in(other)


def test_an_account_under_distributed_guessing_slows_guessers_not_the_owner(user, settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 5
    guessers = [Client(REMOTE_ADDR=f"192.0.2.{n}") for n in range(5)]
    for guesser in guessers:
        login(user.username, "wrong", client=guesser)
    # Past the ceiling, an address that already failed on the account waits, even with the password...
    _, response = login(user.username, PASSWORD, client=guessers[0])
    assert response.status_code == 429
    # ...and the owner, at an address that has not failed, logs in.
    owner, response = login(user.username, PASSWORD, remote=VICTIM_IP)
    assert response.status_code == 302 and logged_in(owner)


def test_a_tripped_limit_is_logged_with_the_address_and_account(user, caplog):
    with caplog.at_level(logging.WARNING, logger="aethir.security"):
        for _ in range(10):
            login(user.username, "wrong", remote=ATTACKER_IP)
    alerts = [r for r in caplog.records if r.name == "aethir.security" and r.levelno == logging.WARNING]
    assert alerts, "no alert logged"
    message = alerts[0].getMessage()
    assert ATTACKER_IP in message and user.username.lower() in message


# --- Sign-up and the faucet -----------------------------------------------------


def sign_up(username, remote):
    client = Client(REMOTE_ADDR=remote)
    response = client.post(
        reverse("accounts:signup"),
        {"username": username, "password1": "a-long-pass-phrase-9", "password2": "a-long-pass-phrase-9"},
    )
    return client, response


def test_sign_ups_are_limited_per_address(genesis, settings, caplog):
    assert settings.SIGNUPS_PER_ADDRESS_PER_HOUR == 3
    for n in range(3):
        _, response = sign_up(f"spam{n}", ATTACKER_IP)
        assert response.status_code == 302
    with caplog.at_level(logging.WARNING, logger="aethir.security"):
        _, response = sign_up("spam3", ATTACKER_IP)
    assert response.status_code == 429 and "Too many sign-ups" in response.content.decode()
    assert not get_user_model().objects.filter(username="spam3").exists()
    assert any(ATTACKER_IP in r.getMessage() for r in caplog.records if r.name == "aethir.security")
    _, response = sign_up("honest", VICTIM_IP)
    assert response.status_code == 302


def test_the_faucet_is_limited_per_address_across_accounts(genesis, settings):
    settings.FAUCET_CLAIMS_PER_DAY = 3
    settings.FAUCET_CLAIMS_PER_ADDRESS_PER_DAY = 4
    first, second, third = UserFactory(), UserFactory(), UserFactory()
    web = Client(REMOTE_ADDR=ATTACKER_IP)
    web.force_login(first)
    for _ in range(4):  # the fourth is refused by the account's own daily limit: it costs the address nothing
        web.post(reverse("accounts:faucet"))
    first.wallet.refresh_from_db()
    assert first.wallet.available == ath(30_000)
    web = Client(REMOTE_ADDR=ATTACKER_IP)
    web.force_login(second)
    assert web.post(reverse("accounts:faucet"), headers={"HX-Request": "true"}).status_code == 200
    response = web.post(reverse("accounts:faucet"), headers={"HX-Request": "true"})
    assert response.status_code == 429 and "to your address today" in response.content.decode()
    second.wallet.refresh_from_db()
    assert second.wallet.available == ath(10_000)
    api = APIClient(REMOTE_ADDR=ATTACKER_IP)
    api.force_authenticate(third)
    assert api.post("/api/wallet/faucet/").status_code == 429
    # Another address is not affected.
    api = APIClient(REMOTE_ADDR=VICTIM_IP)
    api.force_authenticate(third)
    assert api.post("/api/wallet/faucet/").status_code == 201


# --- Settings and error pages ---------------------------------------------------


def run_python(code, tmp_path, **env):
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "DEMO_MODE", "SECRET_KEY", "TRUSTED_PROXIES"}
    }
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        env={**base, "AETHIR_VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
    )


def test_debug_is_off_by_default_and_the_demo_keeps_a_secret_key_of_its_own(tmp_path):
    code = "from django.conf import settings as s; print(s.DEBUG, s.DEMO_MODE, s.SECRET_KEY)"
    first = run_python(code, tmp_path)
    debug, demo, key = first.stdout.splitlines()[-1].split()
    assert (debug, demo) == ("False", "True"), first.stderr
    assert "insecure" not in key and len(key) > 40
    assert (tmp_path / "secret_key").read_text().strip() == key
    assert run_python(code, tmp_path).stdout.split()[-1] == key  # kept across restarts
    assert run_python(code, tmp_path, DEBUG="1").stdout.splitlines()[-1].startswith("True ")


@pytest.mark.parametrize("value", ["maybe", "ture", "2", "enabled"])
def test_unknown_yes_no_values_are_refused(tmp_path, value):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    result = subprocess.run(
        [sys.executable, "-c", "import aethir_web.settings; print('started')"],
        env={**env, "AETHIR_VAR_DIR": str(tmp_path), "DEBUG": value},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "started" not in result.stdout
    assert f"ImproperlyConfigured: DEBUG='{value}'" in result.stderr


def test_yes_no_spellings(monkeypatch):
    from aethir_web.settings import env_bool

    for value, expected in [
        ("1", True),
        ("Yes", True),
        ("on", True),
        ("TRUE", True),
        ("0", False),
        ("no", False),
        ("off", False),
        ("False", False),
    ]:
        monkeypatch.setenv("X_FLAG", value)
        assert env_bool("X_FLAG", not expected) is expected
    for unset in ["", "  "]:  # empty reads as unset, not as "no"
        monkeypatch.setenv("X_FLAG", unset)
        assert env_bool("X_FLAG", True) is True
    monkeypatch.delenv("X_FLAG")
    assert env_bool("X_FLAG", True) is True


def test_default_error_pages_show_no_patterns_traceback_or_settings(tmp_path):
    """The defaults as `make run` starts them, with a view that fails."""
    code = (
        "from django.test import Client, override_settings\n"
        "with override_settings(ROOT_URLCONF='tests.security.boom_urls'):\n"
        "    c = Client(raise_request_exception=False, HTTP_HOST='127.0.0.1')\n"
        "    for path in ['/no-such-page/', '/boom/']:\n"
        "        r = c.get(path)\n"
        "        print('===', r.status_code)\n"
        "        print(r.content.decode())\n"
    )
    result = run_python(code, tmp_path, REDIS_URL="")
    assert "=== 404" in result.stdout and "=== 500" in result.stdout, result.stderr
    for leak in [
        "urlpatterns",
        "Using the URLconf",
        "explorer/",
        "Traceback",
        "SECRET_KEY",
        "REDIS_URL",
        "boom_urls",
        "RuntimeError",
    ]:
        assert leak not in result.stdout


def test_404_page_is_friendly_and_lists_no_url_patterns(client, genesis):
    response = client.get("/no-such-page/")
    body = response.content.decode()
    assert response.status_code == 404 and "Page not found" in body and 'href="/"' in body
    assert body.startswith("<!doctype html>")
    assert "urlpatterns" not in body and "explorer/" not in body


@override_settings(ROOT_URLCONF="tests.security.boom_urls")
def test_500_page_is_friendly_without_traceback(db):
    response = Client(raise_request_exception=False).get("/boom/")
    body = response.content.decode()
    assert response.status_code == 500 and "Something went wrong on our side" in body
    assert "Traceback" not in body and "RuntimeError" not in body and "SECRET_KEY" not in body


def test_static_files_are_served_without_collectstatic(client, genesis):
    """With DEBUG off, the demo still serves the scripts its pages reference."""
    body = client.get(reverse("monitoring:index")).content.decode()
    scripts = re.findall(r'<script[^>]+src="(/static/[^"]+)"', body)
    assert any("plotly" in s for s in scripts) and any("htmx" in s for s in scripts), scripts
    for src in scripts:
        response = client.get(src)
        assert response.status_code == 200, src
        assert int(response.headers["Content-Length"]) > 0, src

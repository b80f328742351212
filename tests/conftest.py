import pytest
from django.core.cache import cache

from apps.core import ledger
from apps.core.parameters import ensure_defaults

from .factories import UserFactory


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    # Browser journeys last (after pytest-django's own ordering): Playwright's
    # sync API keeps an event loop running on the main thread while the
    # session's browser lives, which would break any later test that runs a
    # coroutine or touches the ORM from that thread.
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture
def db(db):
    # pytest-django's `db`, plus the GPU catalogue and regions its data
    # migration loads: a transactional test's flush (or one that committed
    # from another thread on PostgreSQL) can leave the tables empty for the
    # tests after it, and the catalogue is reference data every test may read.
    from apps.core import catalogue_data
    from apps.core.models import GpuModel, Region

    if not GpuModel.objects.exists() or not Region.objects.exists():
        catalogue_data.load(GpuModel, Region)
    return db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Real hashing costs ~0.3 s a user; the tests are about behaviour, not PBKDF2.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clear_cache():
    # Throttle counters live in the cache (Redis in the PostgreSQL run).
    cache.clear()
    yield


@pytest.fixture
def genesis(db):
    ensure_defaults()
    return ledger.genesis()


@pytest.fixture
def user(genesis):
    return UserFactory()


@pytest.fixture
def other_user(genesis):
    return UserFactory()


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client

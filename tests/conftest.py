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


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings):
    # Django builds a PostgreSQL connection pool the first time anything asks
    # for a cursor, even a cursor pytest-django then refuses (before the test
    # database exists), and the pool keeps the database name it was built
    # with: create_test_db does not rebuild it when it switches to test_*. A
    # pool built that early would run the migrations, every test and every
    # transactional flush on the database DATABASE_URL names. Drop any such
    # pool before the test database is set up.
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        if hasattr(connection, "close_pool"):
            connection.close_pool()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    # And refuse to go on if a connection still reaches another database.
    from django.db import connections

    with django_db_blocker.unblock():
        for connection in connections.all():
            if connection.vendor != "postgresql":
                continue
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_database()")
                (actual,) = cursor.fetchone()
            if actual != connection.settings_dict["NAME"]:
                pytest.exit(
                    f"tests reached database {actual!r}, not the test database "
                    f"{connection.settings_dict['NAME']!r}; stopped before any test ran",
                    returncode=3,
                )
    yield
    # Once a whole PostgreSQL run left one session on the test database at
    # the end (a thread still holding a pooled connection; which one was not
    # found), so it could not be dropped and stayed behind. The database is
    # the run's own: end any session on it before pytest-django drops it.
    with django_db_blocker.unblock():
        for connection in connections.all():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )


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

"""The suite works on a database of its own, never on the one DATABASE_URL
names, and fetching the API schema (as clients and the fuzz tests do, the
latter while pytest collects, before any test database exists) reads
nothing from the database: a refused early query used to leave Django's
PostgreSQL pool bound to the named database, so migrations, tests and
transactional flushes ran there."""

import pytest
from django.db import connection
from django.db.backends.base.creation import TEST_DATABASE_PREFIX


@pytest.mark.django_db
def test_the_tests_run_on_the_test_database_not_the_named_one():
    # create_test_db has switched NAME to the test database by now; what the
    # connection really reaches must be that one.
    name = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT current_database()")
            (reached,) = cursor.fetchone()
            assert name.startswith(TEST_DATABASE_PREFIX)
        else:
            cursor.execute("PRAGMA database_list")
            reached = next(row[2] for row in cursor.fetchall() if row[1] == "main")
            assert name == connection.settings_dict["TEST"]["NAME"]  # the settings' file per test process
    assert reached == name


@pytest.mark.django_db
def test_fetching_the_api_schema_costs_no_query(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    catalogue = response.json()["paths"]["/api/marketplace/nodes/"]["get"]
    assert {"gpu", "region", "sort"} <= {p["name"] for p in catalogue["parameters"]}

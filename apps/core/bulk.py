"""Write changed fields of many rows by primary key, in one statement.

Django's ``bulk_update`` builds a ``CASE WHEN pk = ... THEN ...`` expression
per field over every row of a batch, and compiling that costs far more than
running it: about 8 ms for the few accounts of one ledger posting, tens of
seconds for a settlement's nodes. Here one parameterised ``UPDATE ... WHERE
pk = %s`` goes to the database with ``executemany``: the same SQL on SQLite
and PostgreSQL, inside the caller's transaction, no expression tree. On
PostgreSQL, where each of those statements still costs a round of the
protocol (about ten times SQLite's cost a row), the rows go as one array per
column instead, in one ``UPDATE ... FROM UNNEST(...)``, as Django's own
``bulk_create`` does there. Like ``bulk_update`` it writes the attribute
values as they are (``auto_now`` is not applied) and sends no signals.
"""

from django.db import connections, router
from django.db.models.expressions import RawSQL


def update_fields(objs, fields: list[str]) -> int:
    """Write ``fields`` of every object in ``objs`` (all of one model);
    returns the number of objects."""
    objs = list(objs)
    if not objs:
        return 0
    model = type(objs[0])
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(c.column)} = %s" for c in columns)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"
    params = [[c.get_db_prep_save(getattr(obj, c.attname), connection) for c in columns] + [obj.pk] for obj in objs]
    with connection.cursor() as cursor:
        if (
            connection.vendor == "postgresql"
            and len(params) > 1
            and _unnestable(connection, [*columns, meta.pk], params)
        ):
            # An object listed twice is written once, with its last values, as executemany would leave it.
            rows = list({row[-1]: row for row in params}.values())
            names = [f"c{i}" for i in range(len(columns))]
            types = [f.db_type(connection).split("(")[0] for f in [*columns, meta.pk]]  # varchar, not varchar(16)
            cursor.execute(
                f"UPDATE {quote(meta.db_table)} SET "
                + ", ".join(f"{quote(c.column)} = v.{n}" for c, n in zip(columns, names, strict=True))
                + f" FROM UNNEST({', '.join(f'(%s)::{t}[]' for t in types)}) AS v({', '.join(names)}, pk)"
                + f" WHERE {quote(meta.db_table)}.{quote(meta.pk.column)} = v.pk",
                [list(column) for column in zip(*rows, strict=True)],
            )
        else:
            cursor.executemany(sql, params)
    return len(objs)


def _unnestable(connection, fields, params) -> bool:
    """Whether these columns' values fit in typed arrays: the test Django's
    PostgreSQL ``bulk_create`` applies before it inserts through UNNEST."""
    return not (
        any(hasattr(f, "get_placeholder_sql") for f in fields)
        or any(
            (f.target_field if f.is_relation else f).get_internal_type() not in connection.data_types for f in fields
        )
        or any(hasattr(value, "as_sql") for row in params for value in row)
    )


# Far below SQLite's limit on bound variables in one statement (250,000 in
# current builds, 32,766 in older ones), and quick to plan.
CHUNK = 10_000


def update_in(model, ids, **values) -> int:
    """``model.objects.filter(pk__in=ids).update(**values)`` for any number
    of ids, in chunks (on PostgreSQL in one statement, the ids as one array:
    a list of 10,000 literals costs more to send and plan than to apply);
    returns the number of rows updated."""
    ids = list(ids)
    if not ids:
        return 0
    pk = model._meta.pk
    connection = connections[router.db_for_write(model)]
    if connection.vendor == "postgresql":
        pk_type = pk.db_type(connection).split("(")[0]
        unnest = RawSQL(f"SELECT UNNEST(%s::{pk_type}[])", [[pk.get_db_prep_value(i, connection) for i in ids]])
        return model.objects.filter(pk__in=unnest).update(**values)
    return sum(model.objects.filter(pk__in=ids[i : i + CHUNK]).update(**values) for i in range(0, len(ids), CHUNK))

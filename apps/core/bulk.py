"""Write changed fields of many rows by primary key, in one statement.

Django's ``bulk_update`` builds a ``CASE WHEN pk = ... THEN ...`` expression
per field over every row of a batch, and compiling that costs far more than
running it: about 8 ms for the few accounts of one ledger posting, tens of
seconds for a settlement's nodes. Here one parameterised ``UPDATE ... WHERE
pk = %s`` goes to the database with ``executemany``: the same SQL on SQLite
and PostgreSQL, inside the caller's transaction, no expression tree. Like
``bulk_update`` it writes the attribute values as they are (``auto_now`` is
not applied) and sends no signals.
"""

from django.db import connections, router


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
        cursor.executemany(sql, params)
    return len(objs)


# Far below SQLite's limit on bound variables in one statement (250,000 in
# current builds, 32,766 in older ones), and quick to plan.
CHUNK = 10_000


def update_in(model, ids, **values) -> int:
    """``model.objects.filter(pk__in=ids).update(**values)`` for any number
    of ids, in chunks; returns the number of rows updated."""
    ids = list(ids)
    return sum(model.objects.filter(pk__in=ids[i : i + CHUNK]).update(**values) for i in range(0, len(ids), CHUNK))

from django.db import models


class BigIntText(models.CharField):
    """A non-negative integer of any size, stored as decimal digits.

    The reward index is micro-ATH scaled by 10**27 (see ``services.SCALE``),
    which overflows 64-bit columns, and SQLite silently turns large NUMERIC
    values into floats. Digits in a text column are exact on every backend;
    the index is only ever compared and added in Python, never in SQL.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 100)
        kwargs.setdefault("default", 0)
        super().__init__(*args, **kwargs)

    def from_db_value(self, value, expression, connection):
        return None if value is None else int(value)

    def to_python(self, value):
        if value is None or isinstance(value, int):
            return value
        return int(value)

    def get_prep_value(self, value):
        if value is None:
            return None
        value = int(value)
        if value < 0:
            raise ValueError("BigIntText holds non-negative integers only")
        return str(value)

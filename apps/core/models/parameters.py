"""History of protocol parameters (docs/rules.md §9); the definitions,
units, defaults and bounds live in ``apps/core/parameters.py``."""

from django.db import models


class ParameterChange(models.Model):
    """One value of one protocol parameter, in force from ``effective_epoch``.

    Values are integers in the unit that ``parameters.py`` declares for the
    key (micro-ATH, parts per million, milliseconds, ...), never floats.
    """

    key = models.CharField(max_length=64)
    value = models.BigIntegerField()
    effective_epoch = models.BigIntegerField(default=0)
    source = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key", "-effective_epoch", "-id"]
        indexes = [models.Index(fields=["key", "effective_epoch"])]

    def __str__(self):
        return f"{self.key}={self.value} from epoch {self.effective_epoch}"

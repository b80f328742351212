from django.contrib import admin

from .models import Account, LedgerTransaction, ParameterChange


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    """Read-only: balances change only through the ledger service."""

    list_display = ["address", "kind", "module", "owner", "available", "bonded"]
    search_fields = ["address", "owner__username"]
    readonly_fields = [f.name for f in Account._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(admin.ModelAdmin):
    list_display = ["height", "kind", "memo", "created_at"]
    list_filter = ["kind"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ParameterChange)
class ParameterChangeAdmin(admin.ModelAdmin):
    list_display = ["key", "value", "effective_epoch", "source", "created_at"]
    list_filter = ["key"]

    def has_change_permission(self, request, obj=None):
        return False

import factory
from django.contrib.auth.hashers import make_password
from django.contrib.auth import get_user_model

from apps.core import ledger
from apps.core.models import Account, AccountKind, ModuleAccount, TxKind

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"person{n}")
    password = factory.LazyFunction(lambda: make_password(PASSWORD))


class WalletFactory(factory.django.DjangoModelFactory):
    """A wallet with no owner (an agent or a test counterparty)."""

    class Meta:
        model = Account

    kind = AccountKind.USER
    label = factory.Sequence(lambda n: f"wallet {n}")


def fund(account: Account, amount: int) -> None:
    """Give ``account`` ``amount`` uATH from the faucet module account."""
    ledger.transfer(ledger.module_account(ModuleAccount.FAUCET), account, amount, kind=TxKind.FAUCET, memo="test funds")
    account.refresh_from_db()

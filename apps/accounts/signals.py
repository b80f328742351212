from django.contrib.auth import get_user_model
from django.db.models.signals import post_save
from django.dispatch import receiver

from .services import open_wallet


@receiver(post_save, sender=get_user_model())
def give_every_user_a_wallet(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        open_wallet(instance)

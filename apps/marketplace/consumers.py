"""A rental's page follows its workload live: ``/ws/rentals/<id>/``. Only
the renter may listen (anyone else's socket is closed at once, as if the
rental did not exist); every state, endpoint or log tail the node's agent
reports re-renders the workload card."""

from channels.db import database_sync_to_async
from django.template.loader import render_to_string

from apps.platform.consumers import CoalescedFragmentConsumer

from . import queries
from .live import rental_group
from .models import Rental


class RentalConsumer(CoalescedFragmentConsumer):
    async def accept_or_close(self):
        self.rental_id = int(self.scope["url_route"]["kwargs"]["pk"])
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return False
        return await database_sync_to_async(Rental.objects.filter(pk=self.rental_id, renter_id=user.pk).exists)()

    async def connect(self):
        await super().connect()
        if getattr(self, "_groups", None):
            # The page was rendered before this socket joined its group, and
            # a node's agent often reports within a second of the rental (it
            # starts the container at once): a report in between would reach
            # no one. One render now catches the page up.
            await self.changed()

    def groups_for(self):
        return [rental_group(self.rental_id)]

    def render(self):
        rental = Rental.objects.select_related("node").get(pk=self.rental_id)
        context = queries.workload_context(rental)
        context["oob"] = True
        return render_to_string("marketplace/_workload.html", context)

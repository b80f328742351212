"""The bell: a logged-in person's unread count, pushed when they get a notification."""

from django.template.loader import render_to_string

from apps.platform.consumers import CoalescedFragmentConsumer

from . import live, services


class BellConsumer(CoalescedFragmentConsumer):
    min_interval = 0.5

    async def accept_or_close(self) -> bool:
        user = self.scope.get("user")
        return bool(user and user.is_authenticated)

    def groups_for(self) -> list[str]:
        return [live.user_group(self.scope["user"].pk)]

    def render(self) -> str:
        return render_to_string(
            "notifications/_bell_count.html", {"unread": services.unread_count(self.scope["user"]), "oob": True}
        )

    async def notifications_changed(self, event):
        await self.changed(event)

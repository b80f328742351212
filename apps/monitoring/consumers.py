"""Live monitoring pages: the network overview, a node, a checker."""

from channels.db import database_sync_to_async
from django.template.loader import render_to_string

from apps.core.models import CheckerNode, GpuNode
from apps.platform.consumers import CoalescedFragmentConsumer

from . import live, queries


class OverviewConsumer(CoalescedFragmentConsumer):
    shared = True  # a public page: the same fragment for everyone

    def groups_for(self):
        return [live.OVERVIEW_GROUP]

    def render(self):
        return render_to_string("monitoring/_overview_live.html", queries.overview_context())


class NodeConsumer(CoalescedFragmentConsumer):
    shared = True  # a public page: the same fragment for everyone

    async def accept_or_close(self):
        self.node_id = int(self.scope["url_route"]["kwargs"]["pk"])
        return await database_sync_to_async(GpuNode.objects.filter(pk=self.node_id).exists)()

    def groups_for(self):
        return [live.node_group(self.node_id), live.TELEMETRY_GROUP, live.EPOCH_GROUP]

    def wants(self, event):
        # Telemetry hints name the nodes that posted (None: all of them).
        if event.get("type") != "monitoring.telemetry":
            return True
        nodes = event.get("nodes")
        return nodes is None or self.node_id in nodes

    def render(self):
        node = GpuNode.objects.select_related("gpu_model", "region", "provider").get(pk=self.node_id)
        return render_to_string("monitoring/_node_live.html", queries.node_context(node))


class CheckerConsumer(CoalescedFragmentConsumer):
    shared = True  # a public page: the same fragment for everyone

    async def accept_or_close(self):
        self.checker_id = int(self.scope["url_route"]["kwargs"]["pk"])
        return await database_sync_to_async(CheckerNode.objects.filter(pk=self.checker_id).exists)()

    def groups_for(self):
        return [live.checker_group(self.checker_id), live.EPOCH_GROUP]

    def render(self):
        checker = CheckerNode.objects.select_related("operator").get(pk=self.checker_id)
        return render_to_string("monitoring/_checker_live.html", queries.checker_context(checker))

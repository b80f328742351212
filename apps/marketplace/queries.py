"""Reads shared by the marketplace pages and its API (the catalogue's own
list lives in ``catalogue``)."""

from apps.core.errors import NotFound
from apps.core.models import GpuNode

from .models import Rental


def my_rental(user, pk) -> Rental:
    """``user``'s rental ``pk``: another person's rental does not exist, as far
    as they can tell."""
    rental = (
        Rental.objects.filter(pk=pk, renter_id=user.pk)
        .select_related("node", "node__gpu_model", "node__region", "node__provider", "replaces")
        .first()
    )
    if rental is None:
        raise NotFound("No such rental.")
    return rental


def my_node(user, pk) -> GpuNode:
    """``user``'s node ``pk``, as a provider sees it; anyone else's answers as missing."""
    node = GpuNode.objects.filter(pk=pk, provider_id=user.pk).select_related("gpu_model", "region", "provider").first()
    if node is None:
        raise NotFound("No such node.")
    return node

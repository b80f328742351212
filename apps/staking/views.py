from django.shortcuts import render

from apps.accounts.services import open_wallet


def index(request):
    wallet = open_wallet(request.user) if request.user.is_authenticated else None
    return render(request, "staking/index.html", {"wallet": wallet})

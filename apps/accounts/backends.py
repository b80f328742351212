from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from . import throttle


class ThrottledModelBackend(ModelBackend):
    """Django's username and password check, behind the log-in limits of
    ``apps.accounts.throttle``. Every form that authenticates (our log-in
    page and the admin's) goes through here, so none of them escapes the
    limits.

    A refused attempt raises ``PermissionDenied``, which ends
    ``authenticate()`` before any backend checks the password; the form then
    reads ``request.login_refused`` (seconds to wait) to say so. A wrong
    password ends it the same way: ModelBackend is listed after this one only
    so that sessions it logged in stay valid, and must not check the same
    password a second time.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if request is None or username is None or password is None:
            # Not a client's log-in (a command, a test's Client.login): no address to count.
            return super().authenticate(request, username=username, password=password, **kwargs)
        retry = throttle.check_login(request, username)
        if retry is not None:
            request.login_refused = retry
            raise PermissionDenied
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            throttle.login_failed(request, username)
            raise PermissionDenied
        throttle.login_succeeded(request, username)
        return user

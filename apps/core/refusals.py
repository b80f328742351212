"""How an HTML view shows a refused domain action (``apps.core.errors``):
on the form, at the field the refusal is about, or as a flash message. Both
return the status the meaning maps to, for views that answer with the page
itself rather than a redirect."""

from django.contrib import messages

from .errors import DomainError


def refuse(form, exc: DomainError, field: str | None = None) -> int:
    """Add ``exc`` to ``form``: at the field the error names, else at
    ``field``, else to the form as a whole."""
    form.add_error(exc.field or field, str(exc))
    return exc.status


def flash(request, exc: DomainError) -> int:
    """Show ``exc`` on the next page the person sees."""
    messages.error(request, str(exc))
    return exc.status

"""The "Account actions" section of the user's page: one small form per action, each with
a required reason, posting to `<user id>/account/<action>/`. Thin: a form parses, one
service of provisioning/account_actions runs, the outcome is one message."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db import DatabaseError
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from provisioning.account_actions import services
from provisioning.account_actions.client import AccountActionFailed, unavailable_reason
from provisioning.account_actions.selectors import user_factors
from provisioning.actors import Actor
from provisioning.approvals import kinds as approval_kinds
from provisioning.approvals import services as approvals
from provisioning.errors import first_line
from provisioning.ids import parse_uuid

#: The choices of the ban form (the command line takes any duration).
BAN_DURATIONS = [("1h", "1 hour"), ("24h", "24 hours"), ("7d", "7 days"), ("30d", "30 days"), ("forever", "forever")]
#: Actions that send e-mail through the public endpoints (the anon key); the others use the
#: admin API (the service-role key), but sign-out, which is SQL.
PUBLIC = {"resend", "reset-password"}
NO_API = {"signout"}


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=1000, strip=True, error_messages={"required": "A reason is required."})


class BanForm(ReasonForm):
    duration = forms.ChoiceField(choices=BAN_DURATIONS)


class RemoveMfaForm(ReasonForm):
    factor = forms.CharField(max_length=40)  # a factor id, or "all"


class DeleteForm(ReasonForm):
    mode = forms.ChoiceField(choices=[("soft", "soft"), ("hard", "hard")])


FORMS = {"ban": BanForm, "remove-mfa": RemoveMfaForm, "delete": DeleteForm}


def urls(model_admin) -> list:
    """The POST address of every action, for the auth user admin's get_urls()."""
    info = model_admin.opts.app_label, model_admin.opts.model_name
    return [
        path(
            "<path:object_id>/account/<str:name>/",
            model_admin.admin_site.admin_view(lambda request, object_id, name: action_view(request, object_id, name)),
            name=f"{info[0]}_{info[1]}_account_action",
        )
    ]


def action_view(request, object_id, name):
    """Run one action for the user. A staff member without its permission gets 403 and a
    "denied" event (forged POSTs included), before the form is even read."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    user_id = parse_uuid(object_id)
    if name not in services.BY_NAME or user_id is None:
        from django.http import Http404

        raise Http404("No such account action.")
    action, service = services.BY_NAME[name]
    actor = Actor.from_request(request)
    services.refuse_unless_allowed(actor=actor, action=action, user_id=user_id, detail={"form": name})
    page = reverse("admin:provisioning_authuser_change", args=[user_id])
    form = FORMS.get(name, ReasonForm)(request.POST)
    if not form.is_valid():
        messages.error(request, _form_error(form))
        return HttpResponseRedirect(page)
    kwargs = {"actor": actor, "user_id": user_id, "reason": form.cleaned_data["reason"]}
    if name == "ban":
        kwargs["duration"] = form.cleaned_data["duration"]
    elif name == "remove-mfa":
        factor = form.cleaned_data["factor"]
        if factor == "all":
            kwargs["every"] = True
        else:
            kwargs["factor_id"] = parse_uuid(factor)
    elif name == "delete":
        kwargs["soft"] = form.cleaned_data["mode"] == "soft"
    if approvals.approvals_on() and approval_kinds.account_kind(name, duration=kwargs.get("duration")):
        return _ask(request, name, page, **kwargs)
    try:
        result = service(**kwargs)
    except (AccountActionFailed, ValueError) as exc:
        messages.error(request, str(exc))
        if getattr(exc, "kind", "") == "gone" and name != "remove-mfa":
            return HttpResponseRedirect(reverse("admin:provisioning_authuser_changelist"))
        return HttpResponseRedirect(page)
    messages.success(request, result.summary)
    if name == "delete" and not kwargs["soft"]:
        return HttpResponseRedirect(reverse("admin:provisioning_authuser_changelist"))
    return HttpResponseRedirect(page)


def _ask(request, name, page, *, actor, user_id, reason, **options):
    """The two-person rule: the action becomes a request another staff member with the same
    permission approves (it then runs, as them). Nothing runs now."""
    kind = approval_kinds.account_kind(name, duration=options.get("duration"))
    why_not = unavailable_reason()
    if why_not or (name == "remove-mfa" and not (options.get("factor_id") or options.get("every"))):
        messages.error(request, f"Unavailable: {why_not}." if why_not else "Choose one factor, or all of them.")
        return HttpResponseRedirect(page)
    params = approval_kinds.account_params(user_id=user_id, reason=reason, requested_by=actor.username, **options)
    try:
        asked = approvals.request_approval(actor=actor, kind=kind, params=params, reason=reason, target_user_id=user_id)
    except ValueError as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(page)
    url = reverse("admin:provisioning_approvalrequest_change", args=[asked.pk])
    messages.success(
        request,
        format_html(
            'Asked for approval: <a href="{}">request {}</a> ({}). Nothing has run yet: another staff member with '
            "the same permission must approve it.",
            url,
            asked.pk,
            asked.summary,
        ),
    )
    return HttpResponseRedirect(page)


def _form_error(form) -> str:
    return " ".join(str(error) for errors in form.errors.values() for error in errors)


def page_context(request, user) -> dict | None:
    """What the section shows: the actions this staff member may use, each available or
    unavailable with its reason; None when they may use none (the section is not shown)."""
    actor = Actor.from_request(request)
    allowed = {name for name, (action, _) in services.BY_NAME.items() if services.may(actor, action)}
    if not allowed:
        return None
    admin_reason, public_reason = unavailable_reason(), unavailable_reason(public=True)

    def why_not(name: str) -> str:
        return "" if name in NO_API else public_reason if name in PUBLIC else admin_reason

    context = {
        "actions": {
            name: {
                "url": reverse("admin:provisioning_authuser_account_action", args=[user.pk, name]),
                "why_not": why_not(name),
            }
            for name in services.BY_NAME
            if name in allowed
        },
        "ban_durations": BAN_DURATIONS,
        # The two-person rule (docs/approvals.md): these become requests a second staff member approves.
        "approvals": approvals.approvals_on(),
        "long_ban_days": approval_kinds.LONG_BAN.days,
        "approval_ttl": approvals.ttl_text(),
        "jwt_expiry_minutes": _minutes(),
    }
    # The page must show even where the role cannot read these: the action then says why.
    try:
        if "remove-mfa" in allowed:
            context["factors"] = user_factors(user.pk)
        if "delete" in allowed:
            context["withheld"] = {t: cols for t, cols in services.withheld_for_delete().items() if cols}
            context["delete_blockers"] = services.delete_blockers(user.pk)
    except DatabaseError as exc:
        context["read_error"] = first_line(exc)
    return context


def _minutes() -> int:
    from django.conf import settings

    return max(1, settings.JWT_EXPIRY_SECONDS // 60)

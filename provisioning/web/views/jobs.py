"""Pages for background jobs: the list, a job's live progress page, its JSON status, cancel.

Thin: reads of the job row here, writes in `jobs.py`. Seeing jobs needs the permission to
see auth users (both support groups); cancelling needs the provisioning permission.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from provisioning import jobs
from provisioning.actors import VIEW_PERMISSION, Actor, may_provision
from provisioning.audit import failures
from provisioning.engine import selectors
from provisioning.models import ProvisioningJob
from provisioning.web.admin.ignored_input import ignored_note

LIST_SIZE = 50


def _require_view(request) -> None:
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied("You do not have permission to see provisioning jobs.")


#: How long a job may wait for a worker before the page says none has come.
WORKER_GRACE_SECONDS = 30


def _worker_note(job: ProvisioningJob, worker_running: bool) -> str:
    """What the page says about workers, for support staff: no shell commands (those are
    for administrators, on the health page and in the docs)."""
    if job.finished or worker_running:
        return ""
    waited = (timezone.now() - job.updated_at).total_seconds()
    if waited < WORKER_GRACE_SECONDS:
        return "— waiting for a worker to pick it up." if job.state == ProvisioningJob.State.QUEUED else ""
    return (
        f"— no worker has taken it for {int(waited)} s. It carries on after its last committed batch as soon "
        "as one does; if this lasts, ask an administrator to check the background workers."
    )


def job_status(job: ProvisioningJob) -> dict:
    """What the progress bar shows: counts, percent, users per second, seconds left."""
    end = job.finished_at or timezone.now()
    rate = None
    if job.attempt_started_at and job.state != ProvisioningJob.State.QUEUED:
        elapsed = (end - job.attempt_started_at).total_seconds()
        users = job.users_done - job.attempt_users_start
        if elapsed > 0 and users > 0:
            rate = users / elapsed
    total = job.total_users
    total_batches = job.total_batches
    if job.finished and total is None:
        # Cancelled (or failed) before it was counted: it did what it did, nothing more.
        total, total_batches = job.users_done, job.batches_done
    percent = None
    if job.state == ProvisioningJob.State.SUCCEEDED:
        percent = 100.0
    elif total:
        percent = min(100.0, 100.0 * job.users_done / total)
    elif total == 0:
        percent = 100.0 if job.state == ProvisioningJob.State.SUCCEEDED or not job.finished else 0.0
    seconds_left = None
    if rate and total is not None and not job.finished:
        seconds_left = max(0.0, (total - job.users_done) / rate)
    worker_running = (not job.finished) and jobs.worker_holds(job.pk)
    return {
        "id": job.pk,
        "state": job.state,
        "state_label": job.state_label,
        "outcome": job.outcome,
        "finished": job.finished,
        "cancel_requested": job.cancel_requested,
        "tables": job.tables,
        "batch_size": job.batch_size,
        "total_users": total,
        "total_batches": total_batches,
        "batches_done": job.batches_done,
        "users_done": job.users_done,
        "rows_created": job.rows_created,
        "total_created": job.total_created,
        "not_provisioned_count": job.not_provisioned_count,
        "percent": round(percent, 1) if percent is not None else None,
        "users_per_second": round(rate, 1) if rate else None,
        "seconds_left": round(seconds_left) if seconds_left is not None else None,
        "attempts": job.attempts,
        "worker_running": worker_running,
        "worker_note": _worker_note(job, worker_running),
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "updated_at": job.updated_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "error": job.error,
        "run_id": str(job.run_id),
    }


def job_list_view(request):
    _require_view(request)
    # The list has no filters or pages: anything in the address is said to be ignored.
    for key in request.GET:
        messages.warning(
            request, ignored_note(key, request.GET[key], f"was ignored: this list shows the {LIST_SIZE} newest jobs.")
        )
    context = {
        **admin.site.each_context(request),
        "title": "Provisioning jobs",
        "jobs": ProvisioningJob.objects.all()[:LIST_SIZE],
    }
    return TemplateResponse(request, "admin/provisioning/job_list.html", context)


def job_detail_view(request, pk: int):
    _require_view(request)
    job = get_object_or_404(ProvisioningJob, pk=pk)
    groups = failures.groups_of_run(job.run_id) if job.not_provisioned_count else []
    context = {
        **admin.site.each_context(request),
        "title": f"Provisioning job {job.pk}",
        "job": job,
        "failure_groups": groups,
        "people": selectors.person_labels([u for g in groups for u in g.user_ids]),
        "not_provisioned_url": reverse("admin:provisioning_authuser_changelist") + f"?job={job.pk}",
        "status": job_status(job),
        "can_cancel": may_provision(request.user) and not job.finished,
        "audit_url": reverse("admin:provisioning_auditevent_changelist") + f"?run_id={job.run_id}",
    }
    return TemplateResponse(request, "admin/provisioning/job_detail.html", context)


def job_status_view(request, pk: int):
    _require_view(request)
    job = get_object_or_404(ProvisioningJob, pk=pk)
    return JsonResponse(job_status(job))


@require_POST
def job_cancel_view(request, pk: int):
    job = get_object_or_404(ProvisioningJob, pk=pk)
    # A refusal (ProvisioningDenied, a PermissionDenied) is the admin's 403.
    try:
        jobs.request_cancel(actor=Actor.from_request(request), job=job)
    except jobs.JobNotCancellable:
        messages.info(request, f"Job {job.pk} had already finished.")
    else:
        job.refresh_from_db()
        if job.state == ProvisioningJob.State.CANCELLED:
            messages.success(request, f"Job {job.pk} was cancelled before it started: nothing was written.")
        else:
            messages.success(request, f"Job {job.pk} will stop after the batch in progress; committed batches stay.")
    return HttpResponseRedirect(reverse("provisioning_job", args=[job.pk]))


urlpatterns = [
    path("admin/tools/jobs/", admin.site.admin_view(job_list_view), name="provisioning_jobs"),
    path("admin/tools/jobs/<int:pk>/", admin.site.admin_view(job_detail_view), name="provisioning_job"),
    path(
        "admin/tools/jobs/<int:pk>/status.json",
        admin.site.admin_view(job_status_view),
        name="provisioning_job_status",
    ),
    path("admin/tools/jobs/<int:pk>/cancel/", admin.site.admin_view(job_cancel_view), name="provisioning_job_cancel"),
]

"""Consent pages: the team's consents, a person's page, recording and revoking, the signed
release (owners and editors only), the policy and signing settings, and the verify page."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from jobs.models import Asset
from profiles.models import Profile
from studio.http import StudioRequest, require_membership
from studio.ids import parse_id

from . import credentials, selectors, services
from .forms import (
    ConsentForm,
    CredentialForm,
    PolicyForm,
    RevokeForm,
    TrustAnchorForm,
    VerifyForm,
)
from .models import Consent, PolicyMode, SigningCredential, TrustAnchor


def _visible(request: StudioRequest, pk: int) -> Consent:
    membership = require_membership(request)
    consent = selectors.consent_for_user(request.user, pk)
    if consent is None or consent.team_id != membership.team_id:
        raise Http404
    return consent


@require_GET
def consent_list(request: StudioRequest) -> HttpResponse:
    membership = require_membership(request)
    context = {
        "consents": selectors.team_consents(membership.team_id),
        "mode": PolicyMode(services.policy_mode(membership.team)).label,
        "can_manage": membership.role in services.MANAGERS,
        "events": selectors.team_events(membership.team_id, limit=20),
        "credential": SigningCredential.objects.filter(team=membership.team).first(),
    }
    return render(request, "consent/list.html", context)


@require_http_methods(["GET", "POST"])
def consent_new(request: StudioRequest) -> HttpResponse:
    membership = require_membership(request)
    if membership.role not in services.MANAGERS:
        raise PermissionDenied("Only owners and editors can record consent.")
    team = membership.team
    if request.method == "POST":
        form = ConsentForm(request.POST, request.FILES, team=team)
        if form.is_valid():
            data = form.cleaned_data
            on = data["on"]
            try:
                consent = services.consent_create(
                    team=team,
                    user=request.user,
                    subject=data["subject"],
                    document=data["document"],
                    operations=data["operations"],
                    usage=data["usage"],
                    territories=data["territories"],
                    expires_on=data["expires_on"],
                    profile=on if isinstance(on, Profile) else None,
                    asset=on if isinstance(on, Asset) else None,
                    likeness=data["likeness_file"],
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, f"Consent of {consent.subject} recorded.")
                return redirect(consent)
    else:
        initial = {}
        for kind in ("profile", "asset"):
            if (pk := parse_id(request.GET.get(kind))) is not None:
                initial["on"] = f"{kind}:{pk}"
        form = ConsentForm(initial=initial, team=team)
    status = 422 if form.errors else 200
    return render(request, "consent/new.html", {"form": form}, status=status)


@require_GET
def consent_detail(request: StudioRequest, pk: int) -> HttpResponse:
    consent = _visible(request, pk)
    membership = require_membership(request)
    context = {
        "consent": consent,
        "jobs": selectors.consent_jobs(consent),
        "events": selectors.consent_events(consent),
        "can_manage": membership.role in services.MANAGERS,
        "revoke_form": RevokeForm(),
    }
    return render(request, "consent/detail.html", context)


@require_GET
def consent_document(request: StudioRequest, pk: int) -> FileResponse:
    consent = _visible(request, pk)
    try:
        handle = services.consent_document_open(consent=consent, user=request.user)
    except PermissionDenied:
        raise Http404 from None  # a viewer or reviewer learns nothing about the file
    response = FileResponse(
        handle,
        content_type=consent.document_mime,
        filename=consent.document_name or consent.document.name.rsplit("/", 1)[-1],
    )
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@require_POST
def consent_revoke(request: StudioRequest, pk: int) -> HttpResponse:
    consent = _visible(request, pk)
    form = RevokeForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    services.consent_revoke(consent=consent, user=request.user, reason=reason)
    messages.success(
        request,
        f"Consent of {consent.subject} revoked: the outputs made under it are flagged and "
        "withheld from exports. Nothing was deleted.",
    )
    return redirect(consent)


@require_http_methods(["GET", "POST"])
def consent_settings(request: StudioRequest) -> HttpResponse:
    membership = require_membership(request)
    if not membership.can_manage:
        raise PermissionDenied("Only team owners change the consent policy and signing.")
    team = membership.team
    policy_form = PolicyForm(initial={"mode": services.policy_mode(team)})
    credential_form = CredentialForm()
    trust_form = TrustAnchorForm()
    if request.method == "POST" and request.POST.get("form") == "trust":
        trust_form = TrustAnchorForm(request.POST)
        if trust_form.is_valid():
            try:
                added = credentials.trust_anchors_add(
                    team=team, user=request.user, pem=trust_form.cleaned_data["certificate"]
                )
            except ValidationError as exc:
                trust_form.add_error(None, exc)
            else:
                names = ", ".join(anchor.subject for anchor in added)
                messages.success(request, f"Added to the trust list: {names}.")
                return redirect(f"{reverse('consent:settings')}#trust-list")
    elif request.method == "POST" and request.POST.get("form") == "trust_remove":
        anchor = TrustAnchor.objects.filter(
            team=team, pk=parse_id(request.POST.get("anchor"))
        ).first()
        if anchor is not None:
            credentials.trust_anchor_remove(anchor=anchor, user=request.user)
            messages.success(request, f"Removed from the trust list: {anchor.subject}.")
        return redirect(f"{reverse('consent:settings')}#trust-list")
    elif request.method == "POST" and request.POST.get("form") == "policy":
        policy_form = PolicyForm(request.POST)
        if policy_form.is_valid():
            services.policy_set(team=team, user=request.user, mode=policy_form.cleaned_data["mode"])
            messages.success(request, "Consent policy saved.")
            return redirect("consent:settings")
    elif request.method == "POST" and request.POST.get("form") == "credential":
        credential_form = CredentialForm(request.POST)
        if credential_form.is_valid():
            try:
                credentials.signing_credential_set(
                    team=team,
                    user=request.user,
                    chain_pem=credential_form.cleaned_data["certificate_chain"],
                    key_pem=credential_form.cleaned_data["private_key"],
                )
            except ValidationError as exc:
                credential_form.add_error(None, exc)
            else:
                messages.success(request, "Signing certificate saved.")
                return redirect("consent:settings")
    context = {
        "policy_form": policy_form,
        "credential_form": credential_form,
        "trust_form": trust_form,
        "anchors": TrustAnchor.objects.filter(team=team).select_related("added_by"),
        "credential": SigningCredential.objects.filter(team=team).first(),
    }
    status = 422 if policy_form.errors or credential_form.errors or trust_form.errors else 200
    return render(request, "consent/settings.html", context, status=status)


@require_http_methods(["GET", "POST"])
def verify(request: StudioRequest) -> HttpResponse:
    membership = require_membership(request)
    result = None
    form = VerifyForm()
    if request.method == "POST":
        form = VerifyForm(request.POST, request.FILES)
        if form.is_valid():
            result = credentials.verify(
                form.cleaned_data["file"],
                team=membership.team,
                sidecar=form.cleaned_data["sidecar"],
            )
    status = 422 if form.errors else 200
    return render(request, "consent/verify.html", {"form": form, "result": result}, status=status)

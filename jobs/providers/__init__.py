"""Pick the provider client: the real API when its key is set, the sandbox otherwise."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from jobs.catalog import Provider
from studio.crypto import SecretUnreadable
from studio.models import Team

from .base import AuthError, ProviderClient
from .imagepipeline.client import ImagePipelineClient
from .imaginepro.client import ImagineProClient


@dataclass(frozen=True)
class ProviderConfig:
    provider: Provider
    base_url: str
    api_key: str
    sandbox: bool


def sandbox_url() -> str:
    """Return where the sandbox is served: its own process (SANDBOX_URL) or the web's."""
    return settings.SANDBOX_URL or f"{settings.PUBLIC_BASE_URL}/sandbox"


def config_for(provider: Provider | str, team: Team | None = None) -> ProviderConfig:
    """Return where and with which key to call `provider`: the team's own key first, then the
    studio's, then (with neither) the sandbox."""
    provider = Provider(provider)
    if provider is Provider.IMAGEPIPELINE:
        key, base = settings.IMAGEPIPELINE_API_KEY, settings.IMAGEPIPELINE_BASE_URL
    else:
        key, base = settings.IMAGINEPRO_API_KEY, settings.IMAGINEPRO_BASE_URL
    if team is not None:
        try:
            key = team.provider_key(provider.value) or key
        except SecretUnreadable as exc:
            raise AuthError(
                f"The team's {provider.value} API key cannot be read any more; "
                "an owner must enter it again in the team settings."
            ) from exc
    if key:
        return ProviderConfig(provider, base, key, sandbox=False)
    return ProviderConfig(
        provider,
        f"{sandbox_url()}/{provider.value}",
        settings.SANDBOX_API_KEY,
        sandbox=True,
    )


def client_for(provider: Provider | str, team: Team | None = None) -> ProviderClient:
    config = config_for(provider, team)
    cls = ImagePipelineClient if config.provider is Provider.IMAGEPIPELINE else ImagineProClient
    return cls(
        base_url=config.base_url,
        api_key=config.api_key,
        timeout=settings.PROVIDER_TIMEOUT_SECONDS,
    )

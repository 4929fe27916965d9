"""The image and the compose file, without Docker: the exact commands the Dockerfile runs at build
time and the compose services run at start time are read from those files and run here, with the
environment each would have, so a change that breaks the build or the start fails CI (Docker
itself is exercised by `make docker-check`, where Docker runs)."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from django.conf import settings
from packaging.requirements import Requirement

from .stack import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = str(Path(sys.executable).parent)
# What `docker/check.sh` (and a team trying the sandbox) provides to docker-compose.yml.
SANDBOX_INPUTS = {
    "SECRET_KEY": "x" * 60,
    "FIELD_ENCRYPTION_KEYS": "aW1hZ2UtYnVpbGQtb25seS1ub3QtYS1zZWNyZXQtISE=",
    "SANDBOX_ENABLED": "true",
    "SANDBOX_API_KEY": "a-long-random-sandbox-key-for-the-deploy-tests",
}


# --- reading the files ----------------------------------------------------------------------------


def dockerfile_stages() -> dict[str, dict[str, Any]]:
    """Each stage of the Dockerfile: its base, ENV (inherited from a parent stage) and RUN lines."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            base, _, name = rest.partition(" AS ")
            parent = stages.get(base.strip())
            current = {
                "base": base.strip(),
                "env": dict(parent["env"]) if parent else {},
                "instructions": [],
            }
            stages[name.strip() or f"stage{len(stages)}"] = current
            continue
        assert current is not None, "an instruction before FROM"
        current["instructions"].append((word, rest.strip()))
        if word == "ENV":
            for token in shlex.split(rest):
                key, _, value = token.partition("=")
                current["env"][key] = value
    return stages


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def compose_env(service: str, given: dict[str, str]) -> dict[str, str]:
    """The service's environment as compose would set it, `${X:-default}` and `${X:?error}`
    resolved from `given` (what the operator provides)."""

    def resolve(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if given.get(name):
            return given[name]
        if op == ":?":
            raise AssertionError(f"compose refuses to start without {name}: {arg}")
        return arg or ""

    environment = compose()["services"][service]["environment"]
    return {
        key: re.sub(r"\$\{(\w+)(:-|:\?)?([^}]*)\}", resolve, str(value))
        for key, value in environment.items()
    }


def local_env(service: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """Compose's environment for `service`, with this machine's stand-ins for the compose
    network's database and Redis, the image's ENV, and the virtualenv on PATH."""
    image_env = dockerfile_stages()["runtime"]["env"]
    env = {
        **{k: v for k, v in image_env.items() if k != "PATH"},
        **compose_env(service, SANDBOX_INPUTS),
        "PATH": f"{VENV_BIN}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'studio.sqlite3'}",
        "REDIS_URL": settings.CACHES["default"]["LOCATION"],
        "MEDIA_ROOT": str(tmp_path / "media"),
        "CELERY_QUEUE": f"deploy-test-{os.getpid()}",
        "LIVE_CHANNEL_PREFIX": f"deploy-test-{os.getpid()}",
        **extra,
    }
    return env


def command_of(service: str) -> list[str]:
    command = compose()["services"][service]["command"]
    return command if isinstance(command, list) else shlex.split(command)


# --- the lock file -------------------------------------------------------------------------------


def _locked(path: Path) -> dict[str, str]:
    text = path.read_text()
    return {
        m[1].lower(): m[2] for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", text, re.M)
    }


@pytest.mark.parametrize(
    ("lock", "groups"),
    [("requirements.lock", ["main"]), ("requirements-dev.lock", ["main", "dev"])],
)
def test_lock_files_pin_every_dependency_with_hashes(lock: str, groups: list[str]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    if "dev" in groups:
        wanted += project["optional-dependencies"]["dev"]
    locked = _locked(ROOT / lock)
    for line in wanted:
        requirement = Requirement(line)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in locked, f"{name} is in pyproject.toml but not in {lock}: run `make lock`"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"{lock} pins {name}=={locked[name]}, outside {requirement.specifier}: run `make lock`"
        )
    text = (ROOT / lock).read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert all("--hash=sha256:" in block for block in blocks if "==" in block)


def test_make_install_and_the_image_install_from_the_lock_files() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes --no-deps -r requirements-dev.lock" in makefile
    deps = dockerfile_stages()["deps"]
    runs = [rest for word, rest in deps["instructions"] if word == "RUN"]
    assert any("--require-hashes" in r and "requirements.lock" in r for r in runs)


# --- the Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_installs_dependencies_before_copying_the_code() -> None:
    stages = dockerfile_stages()
    assert {"deps", "static", "runtime"} <= set(stages)
    deps = stages["deps"]["instructions"]
    copies = [rest for word, rest in deps if word == "COPY"]
    assert copies == ["requirements.lock /tmp/requirements.lock"], copies
    runtime = stages["runtime"]
    assert runtime["base"].startswith("python:"), "the runtime stage starts from a clean base"
    assert runtime["env"]["DJANGO_SETTINGS_MODULE"] == "studio.settings.production"
    cmd = next(rest for word, rest in runtime["instructions"] if word == "CMD")
    assert cmd == '["docker/web.sh"]'


def test_dockerignore_keeps_tests_secrets_and_local_state_out_of_the_image() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for entry in (".git", ".venv", "var", "tests", "benchmarks", ".env", "**/__pycache__"):
        assert entry in ignored, entry


def test_collectstatic_runs_with_only_the_build_environment(tmp_path: Path) -> None:
    """The Dockerfile's collectstatic, run as the build runs it: the build stage's ENV and no
    secret at all (the break this guards against: production settings needing a key)."""
    stage = dockerfile_stages()["static"]
    command = next(rest for word, rest in stage["instructions"] if "collectstatic" in rest)
    env = {
        **{k: v for k, v in stage["env"].items() if k != "PATH"},
        "PATH": f"{VENV_BIN}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        # Only where the files go differs: not the checkout's var/.
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    result = subprocess.run(  # noqa: S602 - the Dockerfile's own RUN line, as the build runs it
        command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "static" / "staticfiles.json").exists()


# --- the compose file ----------------------------------------------------------------------------


def test_compose_services_wait_for_migrate_and_each_has_a_health_check() -> None:
    services = compose()["services"]
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "beat"):
        service = services[name]
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert service["restart"] == "unless-stopped"
        assert service["healthcheck"]["test"][:4] == ["CMD", "python", "-m", "studio.healthcheck"]
        assert service["healthcheck"]["test"][4] == name
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"] and services[name]["restart"] == "unless-stopped"
    for name in ("migrate", "web", "worker", "beat"):
        script = ROOT / command_of(name)[0]
        text = re.sub(r"\\\n", " ", script.read_text())
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
        assert lines[-1].startswith("exec "), f"{script} must end by exec-ing its server"


def test_compose_refuses_to_start_without_its_two_secrets() -> None:
    with pytest.raises(AssertionError, match="SECRET_KEY"):
        compose_env("web", {})


def test_migrate_service_stops_with_the_reason_when_no_provider_is_configured(
    tmp_path: Path,
) -> None:
    """With only the two secrets (no provider key, no sandbox), migrate exits non-zero naming
    the missing setting, so web, worker and beat never start on an unmigrated database."""
    env = local_env("migrate", tmp_path, SANDBOX_ENABLED="false", SANDBOX_API_KEY="")
    result = subprocess.run(
        command_of("migrate"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "jobs.E010" in result.stderr and "SANDBOX_ENABLED=true" in result.stderr


def test_migrate_then_web_worker_and_beat_start_and_stop_cleanly(tmp_path: Path) -> None:
    """The start scripts, as compose runs them: migrate (with `check --deploy`) exits 0, then web,
    worker and beat become healthy by their own health checks and end with exit 0 on SIGTERM
    (each script `exec`s its server, so SIGTERM reaches it)."""
    migrate = subprocess.run(
        command_of("migrate"),
        cwd=ROOT,
        env=local_env("migrate", tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr

    port = str(free_port())
    env = local_env("web", tmp_path, PORT=port, CELERY_BEAT_SCHEDULE_FILE=str(tmp_path / "beat"))
    logs = {name: (tmp_path / f"{name}.log").open("w+") for name in ("web", "worker", "beat")}
    processes = {
        name: subprocess.Popen(
            command_of(name), cwd=ROOT, env=env, stdout=logs[name], stderr=subprocess.STDOUT
        )
        for name in ("web", "worker", "beat")
    }

    def healthy(name: str) -> bool:
        for process_name, process in processes.items():
            assert process.poll() is None, f"{process_name} exited: {_tail(logs[process_name])}"
        check = compose()["services"][name]["healthcheck"]["test"][1:]
        return subprocess.run(check, cwd=ROOT, env=env, capture_output=True).returncode == 0

    try:
        for name in ("web", "worker", "beat"):
            wait_for(lambda n=name: healthy(n), timeout=60, interval=0.5, message=f"{name} healthy")
        assert httpx.get(f"http://127.0.0.1:{port}/livez").text == "ok"
        for name, process in processes.items():
            process.send_signal(signal.SIGTERM)
            # Handled, not killed: Celery exits 0; uvicorn finishes, then re-raises SIGTERM.
            assert process.wait(timeout=30) in (0, -signal.SIGTERM), f"{name}: {_tail(logs[name])}"
        assert "Finished server process" in _tail(logs["web"])
        assert "Warm shutdown" in _tail(logs["worker"]) and processes["worker"].returncode == 0
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()


def _tail(handle: Any) -> str:
    handle.flush()
    handle.seek(0)
    return handle.read()[-3000:]


def test_compose_with_real_keys_needs_a_public_address_or_says_it_has_none(
    tmp_path: Path,
) -> None:
    """Compose's default PUBLIC_BASE_URL (http://web:8000) only suits the sandbox: with real keys
    the deploy check in migrate stops, naming both ways out."""
    keys = {"IMAGEPIPELINE_API_KEY": "real-ip-key", "IMAGINEPRO_API_KEY": "real-inp-key"}
    check = [sys.executable, "manage.py", "check", "--deploy"]
    env = local_env("migrate", tmp_path, SANDBOX_ENABLED="false", **keys)
    refused = subprocess.run(check, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "studio.E004" in refused.stderr
    assert "PUBLICLY_REACHABLE=false" in refused.stderr

    env["PUBLICLY_REACHABLE"] = "false"
    allowed = subprocess.run(check, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert allowed.returncode == 0, allowed.stderr
    assert "studio.W005" in allowed.stderr  # ImaginePro has no upload route: said, not fatal

    env["PUBLICLY_REACHABLE"] = "true"
    env["PUBLIC_BASE_URL"] = "https://studio.example.com"
    public = subprocess.run(check, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert public.returncode == 0, public.stderr


def test_production_settings_require_a_public_base_url(tmp_path: Path) -> None:
    env = local_env("migrate", tmp_path)
    del env["PUBLIC_BASE_URL"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0 and "PUBLIC_BASE_URL" in result.stderr

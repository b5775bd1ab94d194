"""Each environment's ArgoCD tree, walked from its kustomize overlay the way ArgoCD would: it
reaches every chart of the repository and nothing else (the upstream operators and data stacks are
the Pulumi program's), orders the sync waves, and protects state."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.facts.paths import REPO_ROOT
from infra.pulumi.gitops_root import with_platform_values
from tests.charts import policy
from tests.charts.helm import (
    DEFAULT_KUBE_VERSION,
    ENVIRONMENTS,
    GITOPS_DIR,
    bootstrap_values,
    charts,
    env_render,
    platform_values,
)
from tests.gitops.argocd import (
    DEFAULT_REPO_URL,
    catalogue,
    env_tree,
    kustomize,
    overlay,
    root_application,
    sources,
    walk,
)

PROTECT = {"Prune=false", "Delete=false"}
FINALIZER = "resources-finalizer.argocd.argoproj.io"


def sync_options(app: dict[str, Any]) -> set[str]:
    raw = app["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-options", "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def wave(obj: dict[str, Any]) -> int:
    return int(obj["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0"))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_overlay_yields_the_root_application_and_its_project(env: str) -> None:
    objects = kustomize(overlay(env))
    assert sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objects) == [
        "AppProject/its-bootstrap",
        "Application/its-bootstrap",
    ], "the gitops-settings ConfigMap is local-config and must not be applied"
    root = root_application(objects)
    assert root["metadata"]["namespace"] == "argocd"
    assert root["metadata"]["labels"]["its.ai/environment"] == env
    assert FINALIZER not in root["metadata"].get("finalizers", []), "deleting the root must not cascade"
    main, values = sources(root)
    assert main["path"] == "infrastructure/gitops/bootstrap" and values["ref"] == "values"
    assert main["helm"]["valueFiles"] == [f"$values/infrastructure/gitops/envs/{env}/bootstrap-values.yaml"]
    assert {main["repoURL"], values["repoURL"], main["helm"]["valuesObject"]["repoURL"]} == {DEFAULT_REPO_URL}
    for obj in objects:
        problems = policy.schema_problems(obj, DEFAULT_KUBE_VERSION)
        assert not problems, problems


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_chart_of_the_repository_is_reachable(env: str) -> None:
    tree = env_tree(env)
    assert sorted(release.chart for release in tree.releases) == sorted(["bootstrap", *charts()])
    for release in tree.releases:
        assert (REPO_ROOT / release.chart_path / "Chart.yaml").is_file()


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_tree_deploys_exactly_what_the_chart_tests_check(env: str) -> None:
    """The chart tests render env_render(chart, env); ArgoCD's walk must hit the same render."""
    tree = env_tree(env)
    for chart in charts():
        assert tree.release(chart).rendered is env_render(chart, env), chart


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_application_is_well_formed_and_synced_automatically(env: str) -> None:
    tree = env_tree(env)
    project = tree.release("bootstrap").rendered.named("AppProject", "its-camera-ai")
    assert not policy.schema_problems(project, DEFAULT_KUBE_VERSION)
    allowed_repos = set(project["spec"]["sourceRepos"])
    allowed_namespaces = {d["namespace"] for d in project["spec"]["destinations"]}
    for app in tree.applications:
        name = app["metadata"]["name"]
        assert not policy.schema_problems(app, DEFAULT_KUBE_VERSION), name
        assert app["spec"]["syncPolicy"]["automated"] is not None, name
        if name == "its-bootstrap":
            continue
        assert app["spec"]["project"] == "its-camera-ai", name
        assert app["metadata"]["labels"]["its.ai/environment"] == env, name
        assert {s["repoURL"] for s in sources(app)} <= allowed_repos, name
        assert app["spec"]["destination"]["namespace"] in allowed_namespaces, name
        assert "*" not in allowed_repos and "*" not in allowed_namespaces


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_value_file_an_application_names_exists(env: str) -> None:
    for app in env_tree(env).applications:
        for source in sources(app):
            for value_file in (source.get("helm") or {}).get("valueFiles") or []:
                assert value_file.startswith("$values/"), f"{app['metadata']['name']}: {value_file}"
                path = REPO_ROOT / value_file.removeprefix("$values/")
                assert path.is_file(), f"{app['metadata']['name']}: {value_file} does not exist"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_sync_waves_put_the_project_before_the_stacks_configuration_before_the_app(env: str) -> None:
    tree = env_tree(env)
    config = [wave(tree.application(c)) for c in charts() if c != "its-camera-ai"]
    app_wave = wave(tree.application("its-camera-ai"))
    project = tree.release("bootstrap").rendered.named("AppProject", "its-camera-ai")
    assert wave(project) < min([*config, app_wave])
    assert app_wave > max(config)
    # Inside the app: identities and policies, then the migration, then the Deployments.
    app = env_render("its-camera-ai", env)
    assert {wave(o) for o in app.of_kind("ServiceAccount") + app.of_kind("NetworkPolicy")} == {-1}
    assert {wave(o) for o in app.of_kind("Job")} == {0}
    assert {wave(o) for o in app.of_kind("Deployment")} == {1}
    for kind in ("Ingress", "HorizontalPodAutoscaler", "ScaledObject"):
        assert {wave(o) for o in app.of_kind(kind)} <= {2}, f"the {kind} goes after its Deployment"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_stateful_applications_are_never_pruned_or_deleted_by_git(env: str) -> None:
    tree = env_tree(env)
    for app in tree.applications:
        name = app["metadata"]["name"]
        if name == "its-bootstrap":
            continue
        sync_class = app["metadata"]["labels"]["its.ai/sync-class"]
        automated = app["spec"]["syncPolicy"]["automated"]
        finalizers = app["metadata"].get("finalizers", [])
        if sync_class == "stateless":
            assert automated == {"prune": True, "selfHeal": True}, name
            assert FINALIZER in finalizers, name
        else:
            assert automated["prune"] is False, name
            assert sync_options(app) >= PROTECT, name
            assert FINALIZER not in finalizers, f"{name}: deleting the Application would delete its state"
        if sync_class == "stateful":
            assert automated["selfHeal"] is False, name
    for chart in ("its-databases", "its-kafka-topics"):
        assert tree.application(chart)["metadata"]["labels"]["its.ai/sync-class"] == "stateful"
    # The stateful objects themselves carry the same protection.
    clusters = env_render("its-databases", env).of_kind("Cluster")
    protected = clusters + env_render("its-kafka-topics", env).of_kind("KafkaTopic")
    assert protected and all(sync_options(o) >= PROTECT for o in protected)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_only_this_repository_s_charts_are_in_the_tree(env: str) -> None:
    """Upstream releases belong to the Pulumi program: an Application pulling one too would give
    the same objects two owners fighting over them."""
    tree = env_tree(env)
    assert tree.upstream_sources == []
    ours = {release["name"] for release in catalogue()}
    assert not ours & {app["metadata"]["name"] for app in tree.applications}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_app_reaches_the_data_stacks_where_the_catalogue_installs_them(env: str) -> None:
    namespaces = {r["namespace"] for r in catalogue()}
    namespaces |= {spec["namespace"] for spec in bootstrap_values(env)["charts"].values()}
    app = env_render("its-camera-ai", env)
    egress = app.named("NetworkPolicy", "its-camera-ai-api")["spec"]["egress"]
    for rule in egress:
        for peer in rule["to"]:
            namespace = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            assert namespace in namespaces | {"kube-system"}, f"egress to {namespace}: nothing is there"


def test_the_repository_url_is_one_setting(tmp_path: Path) -> None:
    """Pointing an environment's settings at a file:// clone moves the whole tree there."""
    copy = tmp_path / "gitops"
    for part in ("base", "components", "envs"):
        shutil.copytree(GITOPS_DIR / part, copy / part)
    settings = copy / "envs" / "dev" / "settings.yaml"
    document = yaml.safe_load(settings.read_text())
    local = "file:///srv/its-camera-ai.git"
    document["data"].update(repoURL=local, targetRevision="HEAD")
    settings.write_text(yaml.safe_dump(document))
    objects = kustomize(copy / "envs" / "dev")
    # As the program applies it: with its `platform` values (the database's backup bucket).
    root = with_platform_values(root_application(objects), platform_values("dev"))
    assert {s["repoURL"] for s in sources(root)} == {local}
    tree = walk(root, "dev", local)
    assert sorted(release.chart for release in tree.releases) == sorted(["bootstrap", *charts()])
    for app in tree.applications:
        ours = [s for s in sources(app) if s.get("path") or s.get("ref")]
        assert ours and all(s["repoURL"] == local and s["targetRevision"] == "HEAD" for s in ours)
    project = tree.release("bootstrap").rendered.named("AppProject", "its-camera-ai")
    assert local in project["spec"]["sourceRepos"] and DEFAULT_REPO_URL not in project["spec"]["sourceRepos"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_program_s_platform_values_reach_only_the_charts_that_take_them(env: str) -> None:
    """The root Application's `platform` (written by the Pulumi program; locally by the local
    cluster, for the app's pods on its real node) is handed by the app of apps to each chart
    entry with platformValues: true, as its valuesObject, and to no other."""
    tree = env_tree(env)
    takers = {name for name, spec in bootstrap_values(env)["charts"].items() if spec.get("platformValues")}
    assert takers == {"its-databases", "its-camera-ai"}
    for app in tree.applications:
        name = app["metadata"]["name"]
        if name == "its-bootstrap":
            continue
        (chart_source,) = [s for s in sources(app) if s.get("path")]
        values_object = chart_source.get("helm", {}).get("valuesObject")
        if name in takers:
            assert values_object == {"platform": platform_values(env)}, name
        else:
            assert values_object is None, name


# A semver tag constraint as ArgoCD resolves it against the repository's tags: comparators
# (>=, <, ...) on versions, a lower bound and an upper one.
TAG_CONSTRAINT = re.compile(r"^(?:(?:>=|<=|>|<|=)\s*v?\d+\.\d+\.\d+\s*){2}$")
BRANCH = re.compile(r"^[A-Za-z][A-Za-z0-9._/-]*$")


def _target_revision(env: str) -> str:
    document = yaml.safe_load((GITOPS_DIR / "envs" / env / "settings.yaml").read_text())
    return str(document["data"]["targetRevision"])


def test_prod_tracks_release_tags_and_dev_a_branch() -> None:
    prod, dev = _target_revision("prod"), _target_revision("dev")
    assert TAG_CONSTRAINT.match(prod), prod
    lower, upper = re.findall(r"v?(\d+)\.\d+\.\d+", prod)
    assert int(upper) == int(lower) + 1, "the next major is a deliberate change of the constraint"
    assert BRANCH.match(dev) and not TAG_CONSTRAINT.match(dev) and not re.search(r"\d+\.\d+\.\d+", dev)
    assert dev == "main"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_application_follows_the_environment_s_revision(env: str) -> None:
    revision = _target_revision(env)
    tree = env_tree(env)
    ours = [s for app in tree.applications for s in sources(app) if s["repoURL"] == DEFAULT_REPO_URL]
    assert ours and {s["targetRevision"] for s in ours} == {revision}

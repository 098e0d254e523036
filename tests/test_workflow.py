"""The README's workflow around the pipeline, on tiny models: DVC's experiment queue,
MLflow runs linked to DVC experiments, and an SSH remote shared between two clones.

One copy of the project (module-scoped) computes the artifacts every strategy shares
once, in the workspace; two experiments are then queued and run by DVC's queue
worker in temporary copies under .dvc/tmp/exps. The SSH test pushes from a clone of
that project to a real OpenSSH server on 127.0.0.1 and pulls into a second clone.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from conftest import make_tiny_encoder, make_tiny_generator
from project_copy import (
    SMALL_DATA, commit_copied_sources, copy_project, experiments, git_commit, queue_status, run,
    run_queue, stage_env, stages_run,
)

pytestmark = pytest.mark.integration

LANGUAGE = "hau"
STRATEGIES = ("base", "english")  # neither runs the generator: cheap on any model
# What every strategy shares; computed once in the workspace, before queueing.
SHARED = ("sources", "base_generator", "base_embedder", "prepare_shared", f"prepare@{LANGUAGE}")
PER_STRATEGY = (f"generate@{LANGUAGE}", f"filter@{LANGUAGE}", f"train_embedder@{LANGUAGE}",
                f"evaluate@{LANGUAGE}", "report")
QUEUE_TIMEOUT_S = 900
METRICS = f"metrics/eval/{LANGUAGE}.json"

SMALL = {
    "languages": [LANGUAGE],
    "data": SMALL_DATA,
    "embedder": {"training": {"epochs": 1, "batch_size": 8, "max_length": 32, "lr": 1.0e-4,
                              "warmup_ratio": 0.0, "max_triplets": 16}},
}


def _env(root: Path) -> dict[str, str]:
    # as a user runs it: no MLFLOW_TRACKING_URI (the project's default database is
    # under test), no PYTHONPATH (`python -m stages.X` imports from the working copy)
    return stage_env(root, MLFLOW_TRACKING_URI=None, PYTHONPATH=None)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The tiny project with the shared upstream stages run in the workspace and committed."""
    tmp = tmp_path_factory.mktemp("workflow")
    models = tmp / "tiny_models"  # outside the project: params point at them
    override = {**SMALL,
                "generator": {"model": str(make_tiny_generator(models / "generator"))},
                "embedder": {**SMALL["embedder"],
                             "model": str(make_tiny_encoder(models / "embedder"))}}
    root = copy_project(tmp / "repo", override)
    env = _env(root)
    commit_copied_sources(root, env)
    out = run(["dvc", "repro", *SHARED], root, env)
    assert set(SHARED) - {"sources"} <= stages_run(out)
    git_commit(root, "shared upstream artifacts", env)
    # From here on the base models exist only in DVC's cache: a run that re-ran
    # base_generator or base_embedder would fail ("no such directory").
    shutil.rmtree(models)
    return root


@dataclass
class Queued:
    baseline: str
    names: dict[str, str]  # strategy -> experiment name
    logs: dict[str, str]  # experiment name -> `dvc queue logs`
    shown: list  # `dvc exp show --json`


@pytest.fixture(scope="module")
def queued(project) -> Queued:
    """Both strategies queued with one sweep, run by `dvc queue start`, waited for."""
    env = _env(project)
    baseline = run(["git", "rev-parse", "HEAD"], project, env).strip()
    run(["dvc", "exp", "run", "--queue", "-S", f"strategy={','.join(STRATEGIES)}", "report"],
        project, env)
    status = queue_status(project, env)
    assert list(status.values()) == ["Queued"] * len(STRATEGIES), status

    status, logs, shown = run_queue(project, env, jobs=1, timeout_s=QUEUE_TIMEOUT_S)
    exps = experiments(shown)
    names = {exps[name]["params"]["params.yaml"]["data"]["strategy"]: name
             for name in status if name in exps}
    assert set(names) == set(STRATEGIES), f"dvc exp show: {sorted(exps)}, queue: {status}"
    return Queued(baseline, names, logs, shown)


def test_queue_runs_both_strategies_and_shared_stages_once(project, queued):
    exps = experiments(queued.shown)
    for strategy, name in queued.names.items():
        data = exps[name]
        score = data["metrics"][METRICS]["data"][LANGUAGE]["main_score"]
        assert 0.0 <= score <= 1.0

        # the queued run recomputed its own stages, and none of the shared ones
        log = queued.logs[name]
        ran = stages_run(log)
        assert set(PER_STRATEGY) <= ran, log[-3000:]
        assert not ran & set(SHARED), f"{name} re-ran shared stages {ran & set(SHARED)}"
        for stage in SHARED:
            assert f"Stage '{stage}' didn't change, skipping" in log, (stage, log[-3000:])

    # and both experiments were built on the very artifacts the workspace computed
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    for stage, path in (("base_generator", "models/base/generator"),
                        ("base_embedder", "models/base/embedder")):
        for name in queued.names.values():
            assert exps[name]["deps"][path]["hash"] == lock[stage]["outs"][0]["md5"]
    for path in (f"data/prepared/{LANGUAGE}/anchors.jsonl", f"data/prepared/{LANGUAGE}/eval.jsonl"):
        hashes = {exps[name]["deps"][path]["hash"] for name in queued.names.values()}
        assert len(hashes) == 1 and None not in hashes, (path, hashes)


def _mlflow_runs(root: Path, filter_string: str = "") -> list:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("bootstrap-embeddings")
    assert experiment is not None, f"no MLflow experiment in {root / 'mlflow.db'}"
    return client.search_runs([experiment.experiment_id], filter_string)


def test_queued_runs_log_to_the_project_mlflow_database(project, queued):
    for strategy, name in queued.names.items():
        # the README's search for one DVC experiment's runs
        mine = _mlflow_runs(project, f"tags.dvc_experiment = '{name}'")
        stages = {r.data.tags["stage"] for r in mine}
        assert {"generate", "train_embedder", "evaluate"} <= stages, (name, stages)
        for r in mine:
            assert r.data.tags["dvc_baseline_revision"] == queued.baseline
            assert r.data.tags["strategy"] == strategy
            assert r.data.tags["language"] == LANGUAGE
            assert r.info.status == "FINISHED"
            # artifacts beside the database, not in the thrown-away copy
            assert r.info.artifact_uri.startswith((project / "mlartifacts").as_uri())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_make_mlflow_ui_serves_the_queued_runs(project, queued):
    venv = Path(sys.prefix)
    # the Makefile's recipe, as `make mlflow-ui` would run it (setup taken as done)
    recipe = run(["make", "--silent", "--dry-run", f"VENV={venv}",
                  "--old-file", f"{venv}/.installed", "mlflow-ui"], project, _env(project))
    cmd = shlex.split(recipe.strip())
    assert cmd[:2] == [f"{venv}/bin/mlflow", "ui"], recipe
    assert f"sqlite:///{project}/mlflow.db" in cmd
    port = _free_port()
    cmd[cmd.index("--port") + 1] = str(port)
    log = project / "mlflow-ui.log"
    with open(log, "w") as fh:
        server = subprocess.Popen(cmd, cwd=project, env=_env(project), stdout=fh,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}/api/2.0/mlflow"
        deadline = time.monotonic() + 120
        while True:
            try:
                found = _get_json(f"{base}/experiments/get-by-name?"
                                  "experiment_name=bootstrap-embeddings")
                break
            except OSError:
                assert server.poll() is None, f"mlflow ui exited:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"mlflow ui silent:\n{log.read_text()[-3000:]}"
                time.sleep(1)
        experiment_id = found["experiment"]["experiment_id"]
        request = urllib.request.Request(
            f"{base}/runs/search", data=json.dumps({"experiment_ids": [experiment_id],
                                                    "max_results": 1000}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            served = json.loads(response.read())["runs"]
        assert len(served) == len(_mlflow_runs(project))
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


# --------------------------------------------------------------------------- SSH remote

SSHD_MISSING = ("sshd not found: the SSH remote test needs an OpenSSH server; "
                "install it with `apt-get install -y openssh-server` (Debian/Ubuntu)")


def _write_key(path: Path):
    import asyncssh

    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(str(path))
    key.write_public_key(str(path) + ".pub")
    path.chmod(0o600)
    return key


@dataclass
class SSHServer:
    port: int
    user: str
    keyfile: Path
    home: Path  # a HOME for the client: ~/.ssh/known_hosts trusts the throwaway host key


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """An OpenSSH server on 127.0.0.1, a free port, throwaway keys; any user, no PAM."""
    binary = shutil.which("sshd")
    if binary is None and os.access("/usr/sbin/sshd", os.X_OK):
        binary = "/usr/sbin/sshd"  # Debian's, off a non-root user's PATH
    if binary is None:
        pytest.fail(SSHD_MISSING, pytrace=False)
    tmp = tmp_path_factory.mktemp("sshd")
    host_key = _write_key(tmp / "host_key")
    _write_key(tmp / "client_key")
    shutil.copyfile(tmp / "client_key.pub", tmp / "authorized_keys")
    port = _free_port()
    config = tmp / "sshd_config"
    config.write_text("\n".join([
        "ListenAddress 127.0.0.1", f"Port {port}", f"HostKey {tmp / 'host_key'}",
        f"AuthorizedKeysFile {tmp / 'authorized_keys'}", f"PidFile {tmp / 'sshd.pid'}",
        "StrictModes no", "UsePAM no", "PubkeyAuthentication yes",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password", "Subsystem sftp internal-sftp", "",
    ]))
    if os.geteuid() == 0:  # root's sshd wants its privilege separation folder
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    home = tmp / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text(
        f"[127.0.0.1]:{port} {host_key.export_public_key('openssh').decode()}")
    log = tmp / "sshd.log"
    with open(log, "w") as fh:
        server = subprocess.Popen([binary, "-D", "-e", "-f", str(config)], stdout=fh,
                                  stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"sshd did not start:\n{log.read_text()[-2000:]}", pytrace=False)
            time.sleep(0.2)
    yield SSHServer(port, getpass.getuser(), tmp / "client_key", home)
    server.terminate()
    server.wait(timeout=30)


def _ssh_env(root: Path, server: SSHServer) -> dict[str, str]:
    # A HOME of the test's own for the commands that talk to the server: no
    # ~/.ssh/config of the user's gets in, and its known_hosts trusts the server.
    # (dvc-ssh 4.3 does not check host keys at all: sshfs hands asyncssh
    # known_hosts=None; the file is there for a version that does.)
    return {**_env(root), "HOME": str(server.home)}


def _add_ssh_remote(root: Path, server: SSHServer, url: str | None = None) -> None:
    env = _env(root)
    if url is not None:  # shared: committed in .dvc/config
        run(["dvc", "remote", "add", "--default", "sshstore", url], root, env)
    # credentials are per machine: .dvc/config.local, never committed
    run(["dvc", "remote", "modify", "--local", "sshstore", "user", server.user], root, env)
    run(["dvc", "remote", "modify", "--local", "sshstore", "keyfile", str(server.keyfile)],
        root, env)


def test_ssh_remote_push_then_pull_into_a_fresh_clone_recomputes_nothing(
        project, sshd, tmp_path):
    storage = tmp_path / "dvc-storage"
    first, second = tmp_path / "first", tmp_path / "second"

    # first clone: shares the project's cache (and so its run cache), runs the
    # pipeline for one strategy, pushes everything it built
    run(["git", "clone", "--quiet", str(project), str(first)], tmp_path, _env(tmp_path))
    env = _env(first)
    run(["dvc", "cache", "dir", "--local", str(project / ".dvc" / "cache")], first, env)
    params = yaml.safe_load((first / "params.yaml").read_text())
    params["strategy"] = "base"
    (first / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["dvc", "repro", "report"], first, env)
    _add_ssh_remote(first, sshd, f"ssh://127.0.0.1:{sshd.port}{storage}")
    git_commit(first, "strategy base, with an SSH remote", env)
    pushed = run(["dvc", "push"], first, _ssh_env(first, sshd))
    assert re.search(r"\d+ files? pushed", pushed), pushed
    assert any(storage.rglob("*")), "nothing arrived in the SSH remote's folder"

    # second clone: a fresh folder with its own empty cache, data only from the remote
    run(["git", "clone", "--quiet", str(first), str(second)], tmp_path, _env(tmp_path))
    env = _env(second)
    _add_ssh_remote(second, sshd)
    # `report`'s pipeline: the first clone built one strategy, not every stage in dvc.yaml
    pulled = run(["dvc", "pull", "--with-deps", "report"], second, _ssh_env(second, sshd))
    assert re.search(r"\d+ files? (fetched|added)", pulled), pulled
    assert (second / "models" / "embedders" / LANGUAGE).is_dir()
    status = run(["dvc", "status", "--with-deps", "report"], second, env)
    assert "Data and pipelines are up to date" in status, status
    repro = run(["dvc", "repro", "report"], second, env)
    assert not stages_run(repro), f"dvc repro recomputed {stages_run(repro)}"
    assert "Data and pipelines are up to date" in repro, repro

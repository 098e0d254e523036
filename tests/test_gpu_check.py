"""scripts/gpu_check.py: one PASS/FAIL/SKIP line per check; on a CPU the CUDA-only checks skip."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO
from scripts import gpu_check


def test_without_cuda_require_cuda_is_a_failure_and_otherwise_a_skip(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(gpu_check.Skip, match="no CUDA device"):
        gpu_check.check_cuda(gpu_check.Context(tmp_path, require_cuda=False))
    with pytest.raises(RuntimeError, match="no CUDA device"):
        gpu_check.check_cuda(gpu_check.Context(tmp_path, require_cuda=True))
    with pytest.raises(gpu_check.Skip, match="NCCL runs on a GPU only"):
        gpu_check.check_nccl_group(gpu_check.Context(tmp_path, require_cuda=False))


def test_a_failing_check_is_one_fail_line_and_a_nonzero_count(monkeypatch, capsys):
    def broken(ctx):
        raise ValueError("the loss is nan")

    monkeypatch.setattr(gpu_check, "CHECKS", (("broken", broken),))
    assert gpu_check.run_checks(require_cuda=False) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("FAIL broken: ValueError: the loss is nan (")
    assert lines[-1].startswith("FAIL gpu-check: 1 failure(s)")


@pytest.mark.integration
def test_runs_on_this_cpu_with_the_cuda_only_checks_skipped():
    result = subprocess.run([sys.executable, "-m", "scripts.gpu_check"], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    status = {line.split()[1].rstrip(":"): line.split()[0] for line in lines}
    names = [name for name, _ in gpu_check.CHECKS]
    assert list(status) == [*names, "gpu-check"]
    if not _cuda():
        assert status["cuda"] == "SKIP" and status["nccl-group"] == "SKIP"
        for name in ("generation", "lora-step", "embedder-step"):
            assert status[name] == "PASS", lines
    assert status["gpu-check"] == "PASS"


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()

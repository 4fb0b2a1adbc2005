"""Faults while a run writes: signals at each stage, kill -9, concurrent runs, read-only and full disks.

The real CLI runs in a subprocess (tests/cli_driver.py: fake backend, pauses at named
stages). After every fault the run folder is the previous run byte for byte, or the
complete new one, and nothing else is left beside it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from cli_driver import SIM_SPEC, cli, group_alive, leftovers, one_line, snapshot, start, wait_for

FAST = ["-q", "--set", "output.plots=false"]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """One finished run (seed 1), copied as the previous run of each test."""
    folder = tmp_path_factory.mktemp("template")
    shutil.copy(SIM_SPEC, folder / "valid.yaml")
    done = cli("run", "valid.yaml", *FAST, "-o", "run", cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder


@pytest.fixture
def previous(template, tmp_path):
    shutil.copy(template / "valid.yaml", tmp_path / "valid.yaml")
    shutil.copytree(template / "run", tmp_path / "run")
    return tmp_path, snapshot(tmp_path / "run")


def complete_run(folder, seed: int) -> bool:
    marker = json.loads((folder / ".framework-run").read_text())
    names = {p.name for p in folder.iterdir()} - {".framework-run"}
    return set(marker["files"]) == names and json.loads(
        (folder / "diagnostics.json").read_text()
    )["seed"] == seed  # fmt: skip


@pytest.mark.parametrize(
    ("stage", "sig"),
    [
        ("prepare", signal.SIGINT),
        ("fit", signal.SIGINT),
        ("writing", signal.SIGINT),
        ("writing", signal.SIGTERM),
        ("swallowed", signal.SIGINT),
    ],
)
def test_signal_before_the_swap_keeps_the_previous_run(previous, stage, sig):
    work, before = previous
    flag = work / "paused"
    proc = start("run", "valid.yaml", *FAST, "-o", "run", "--set", "sampler.seed=2", cwd=work,
                 FRAMEWORK_TEST_PAUSE=stage, FRAMEWORK_TEST_FLAG=str(flag))  # fmt: skip
    wait_for(flag, proc)
    os.kill(proc.pid, sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted; no output was written and previous results are untouched" in err, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert snapshot(work / "run") == before
    assert leftovers(work / "run") == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_the_swap_leaves_the_complete_new_run(previous, sig):
    work, _ = previous
    flag = work / "paused"
    proc = start("run", "valid.yaml", *FAST, "-o", "run", "--set", "sampler.seed=2", cwd=work,
                 FRAMEWORK_TEST_PAUSE="swap", FRAMEWORK_TEST_FLAG=str(flag))  # fmt: skip
    wait_for(flag, proc)
    os.kill(proc.pid, sig)  # deferred until both renames are done
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"the new run directory {work / 'run'} was already complete and is in place" in err
    assert "Traceback" not in err, err
    assert complete_run(work / "run", seed=2)
    assert leftovers(work / "run") == []


def test_stale_leftovers_of_a_killed_writer_are_cleaned_up(previous):
    work, before = previous
    flag = work / "paused"
    proc = start("run", "valid.yaml", *FAST, "-o", "run", "--set", "sampler.seed=2", cwd=work,
                 FRAMEWORK_TEST_PAUSE="writing", FRAMEWORK_TEST_FLAG=str(flag))  # fmt: skip
    wait_for(flag, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert snapshot(work / "run") == before
    assert [n.split("-")[0] for n in leftovers(work / "run")] == [".run.tmp"]
    # The next run, holding the lock, removes them; even a failed one (unknown option).
    failed = cli("run", "valid.yaml", *FAST, "-o", "run", "--set", "backend.options.x=1", cwd=work)
    assert failed.returncode == 2 and "unknown option" in failed.stderr, failed.stderr
    assert leftovers(work / "run") == []
    assert snapshot(work / "run") == before


def test_a_swap_cut_short_by_kill_is_completed_by_the_next_run(previous):
    work, before = previous
    # Killed between the two renames: the previous run sits aside, the target is missing.
    os.rename(work / "run", work / ".run.old-abc123")
    (work / ".run.tmp-def456").mkdir()  # an unfinished new run (no marker): discarded
    failed = cli("run", "valid.yaml", *FAST, "-o", "run", "--set", "backend.options.x=1", cwd=work)
    assert failed.returncode == 2, failed.stderr
    assert snapshot(work / "run") == before
    assert leftovers(work / "run") == []


def test_a_concurrent_run_of_the_same_folder_fails_fast(previous):
    work, before = previous
    flag = work / "paused"
    first = start("run", "valid.yaml", *FAST, "-o", "run", "--set", "sampler.seed=2", cwd=work,
                  FRAMEWORK_TEST_PAUSE="fit", FRAMEWORK_TEST_FLAG=str(flag),
                  FRAMEWORK_TEST_SECONDS="4")  # fmt: skip
    wait_for(flag, first)
    second = cli("run", "valid.yaml", *FAST, "-o", "run", "--set", "sampler.seed=3", cwd=work)
    assert first.poll() is None, "the first run ended before the second started: pause longer"
    line = one_line(second)
    assert line.startswith(f"-o: another framework run is writing {work / 'run'}"), line
    assert "wait for it to finish or choose another folder" in line
    assert snapshot(work / "run") == before  # the second run touched nothing
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert complete_run(work / "run", seed=2)
    assert leftovers(work / "run") == []


def test_runs_started_together_never_mix(previous):
    work, _ = previous

    def one(seed):
        return cli("run", "valid.yaml", *FAST, "-o", "run", "--set", f"sampler.seed={seed}", cwd=work)  # fmt: skip

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, range(10, 14)))
    won = [seed for seed, r in zip(range(10, 14), results, strict=True) if r.returncode == 0]
    for r in results:
        assert r.returncode == 0 or "another framework run is writing" in one_line(r), r.stderr
    assert won, "no run finished"
    assert any(complete_run(work / "run", seed) for seed in won)
    assert leftovers(work / "run") == []


@pytest.fixture
def tmpfs(tmp_path):
    """A 4 MB tmpfs mounted at tmp_path/disk (root only: skipped, saying why, where it cannot)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    shutil.copy(SIM_SPEC, tmp_path / "valid.yaml")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_mount_point_is_refused(tmpfs):
    line = one_line(cli("run", "valid.yaml", *FAST, "-o", tmpfs, cwd=tmpfs.parent))
    assert line == f"-o: {tmpfs} is a mount point; choose another folder with -o or output.dir"


def test_a_read_only_target_ends_in_one_line_and_keeps_the_previous_run(tmpfs):
    work = tmpfs.parent
    assert cli("run", "valid.yaml", *FAST, "-o", tmpfs / "run", cwd=work).returncode == 0
    before = snapshot(tmpfs / "run")
    # Root ignores file permissions, so the file system itself is made read-only.
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    line = one_line(cli("run", "valid.yaml", *FAST, "-o", tmpfs / "run", "--set", "sampler.seed=2", cwd=work))  # fmt: skip
    assert line.startswith(f"-o: cannot write the run directory {tmpfs / 'run'}"), line
    assert "Read-only file system" in line
    assert snapshot(tmpfs / "run") == before


def test_a_full_disk_ends_in_one_line_with_no_process_left(tmpfs):
    work = tmpfs.parent
    assert cli("run", "valid.yaml", *FAST, "-o", tmpfs / "run", cwd=work).returncode == 0
    before = snapshot(tmpfs / "run")
    free = shutil.disk_usage(tmpfs).free
    (tmpfs / "filler").write_bytes(b"\0" * (free - 20_000))  # ~20 kB left: less than one run
    # The "child" stage starts a sampler-like child process that would run on for 2 minutes.
    proc = start("run", "valid.yaml", *FAST, "-o", tmpfs / "run", "--set", "sampler.seed=2",
                 cwd=work, FRAMEWORK_TEST_PAUSE="child", FRAMEWORK_TEST_FLAG=str(work / "f"))  # fmt: skip
    out, err = proc.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip() and "warning" not in line]
    assert proc.returncode == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"-o: cannot write the run directory {tmpfs / 'run'}"), err
    assert "No space left on device" in lines[0]
    assert snapshot(tmpfs / "run") == before
    assert leftovers(tmpfs / "run") == []
    time.sleep(0.5)
    assert not group_alive(proc.pid), "a child process outlived the failed run"

"""The README's path at tiny size, command by command, with no Python call into the project in between:
`bash scripts/demo.sh` (capture on the simulated rig) -> `cinectrl train run examples/train-tiny-cpu.toml` ->
`cinectrl train eval` -> `cinectrl train edit` on the run's model -> `cinectrl serve` + an HTTP client job."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def cli(*args: str, env: dict, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run([str(BIN / "cinectrl"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"cinectrl {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr
    return done


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_readme_demo_to_a_served_edit(tmp_path):
    lab = tmp_path / "lab"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CINECTRL_CATALOG": str(lab / "catalog.db"), "LANG": "C",
           "LC_ALL": "C", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    # 1. the README's demo. It runs the repository's .venv/bin/cinectrl (creating .venv only when missing); when
    #    this interpreter is that venv's, the script runs as users run it.
    if (REPO / ".venv" / "bin" / "cinectrl").is_file() and Path(sys.prefix).resolve() == (REPO / ".venv").resolve():
        done = subprocess.run(["bash", str(REPO / "scripts" / "demo.sh")], env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    else:                                   # the same commands the script runs, with this interpreter's cinectrl
        for name in ("aperture-sweep.toml", "camera-path.toml"):     # the script's default plans
            plan = str(REPO / "examples" / name)
            cli("capture", "plan", plan, "--catalog", str(lab / "catalog.db"), env=env, cwd=tmp_path)
            cli("capture", "run", plan, "--catalog", str(lab / "catalog.db"), env=env, cwd=tmp_path)
    assert (lab / "catalog.db").is_file()

    # 2. train with the example config, placed as in the repository (its paths are relative to it)
    (tmp_path / "examples").mkdir()
    config = shutil.copy(REPO / "examples" / "train-tiny-cpu.toml", tmp_path / "examples")
    done = cli("train", "run", str(config), "--max-steps", "4", env=env, cwd=tmp_path)
    assert "trained 4 steps" in done.stdout and "unreviewed QC-passed pair(s) admitted" in done.stdout, done.stdout
    run = tmp_path / "runs" / "tiny-cpu"
    assert (run / "model" / "model_index.json").is_file() and list((run / "logs").rglob("events.out.tfevents*"))
    assert list((run / "samples").rglob("*.mp4")) and list((run / "samples").rglob("*.png"))
    assert "text conditioning: zeros" in done.stdout

    # 3. evaluate the run's model (captured sweeps from the catalog where it has them, simulated ones from clips)
    clips = sorted(p for p in (lab / "sessions").rglob("combo*.mp4") if ".proxy" not in p.name)
    # (the demo has one scene, so the model held none out: --all-scenes, and the report marks those figures)
    done = cli("train", "eval", "--model", str(run / "model"), "--catalog", str(lab / "catalog.db"), "--all-scenes",
               "--sources", str(clips[0].parent / "combo00?.mp4"), "--steps", "2", "--out", str(tmp_path / "eval"),
               env=env, cwd=tmp_path)
    assert (tmp_path / "eval" / "metrics.json").is_file()

    # 4. edit a captured clip with the run's model (the run directory itself is accepted)
    from rigs.video import probe
    source = probe(clips[0])
    done = cli("train", "edit", str(clips[0]), "--model", str(run), "--exposure", "0.3", "--iso-gain", "0.2",
               "--camera-path", '{"slider_mm": [0, 20]}', "--steps", "2", "--out", str(tmp_path / "edit.mp4"),
               env=env, cwd=tmp_path)
    edited = probe(tmp_path / "edit.mp4")
    assert (edited.frames, edited.width, edited.height) == (source.frames, source.width, source.height)
    assert "edited whole" in done.stdout

    # 5. serve the model and run a job from an HTTP client
    from tests.train.serving import serve_process
    args = [str(BIN / "cinectrl"), "serve", "--model", str(run / "model"), "--data-dir", str(tmp_path / "serve"),
            "--steps", "2"]
    with serve_process(args, env={**env, "CINECTRL_SERVE_TOKEN": "loop-token"}, cwd=tmp_path) as base:
        auth = {"Authorization": "Bearer loop-token"}
        with httpx.Client(base_url=base, headers=auth, timeout=60) as client:
            r = client.post("/jobs", data={"controls": '{"T": -0.4}'},
                            files={"file": (clips[0].name, clips[0].read_bytes(), "video/mp4")})
            assert r.status_code == 202, r.text
            status = client.get(f"/jobs/{r.json()['id']}", params={"wait": 60}).json()
            assert status["status"] == "succeeded", status
            (tmp_path / "served.mp4").write_bytes(client.get(f"/jobs/{status['id']}/result").content)
    served = probe(tmp_path / "served.mp4")
    assert (served.frames, served.width, served.height) == (source.frames, source.width, source.height)

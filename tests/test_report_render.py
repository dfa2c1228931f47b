"""The HTML report: built by `snakemake --report` from one tiny-profile run, rendered offline by
headless Chromium (skipped where Chromium is not installed)."""
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from matplotlib import image

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)

pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed")]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """One tiny-profile run (LieGAN and the oracle, seeds 0 and 1), then its report."""
    tmp = tmp_path_factory.mktemp("report")
    prof = yaml.safe_load((ROOT / "benchmarks/profiles/tiny.yaml").read_text())
    prof.update(benchmarks_dir=str(ROOT / "benchmarks"), methods=["liegan", "oracle"], seeds=[0, 1])
    profile = tmp / "profile.yaml"
    profile.write_text(yaml.safe_dump(prof))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp), "--cores", "2",
           "--configfile", str(profile)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    rep = subprocess.run([*cmd, "--report", "results/report.html"], capture_output=True, text=True, timeout=300)
    assert rep.returncode == 0, rep.stderr[-3000:]
    return tmp / "results/report.html"


def test_report_holds_the_tables_and_figures_with_rendered_captions(report):
    html = report.read_text()
    for name in ("discovery.html", "pairwise.html", "reproduction.html", "over_tasks.html",
                 "similarity_two_body.png", "training_two_body_liegan.png", "resources_two_body.png",
                 "generators_two_body_oracle.png"):
        assert name in html, name
    assert "two_body" in html and "All tasks" in html
    # the Jinja captions were filled from the config
    assert "benchmarks/profiles/tiny.yaml" in html and "seeds 0, 1" in html
    # offline: no script or stylesheet is fetched from the network
    assert 'src="http' not in html and 'href="http' not in html


def test_report_renders_offline_in_headless_chromium(report):
    shot = report.parent / "report.png"
    with tempfile.TemporaryDirectory() as profile_dir:
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile_dir}", f"--screenshot={shot}", "--window-size=1280,900",
               report.resolve().as_uri()]
        subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert shot.exists() and shot.stat().st_size > 5000
    pixels = image.imread(shot)
    assert pixels.shape[:2] == (900, 1280)
    colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    assert len(colours) > 20, f"the screenshot is nearly uniform ({len(colours)} colours)"

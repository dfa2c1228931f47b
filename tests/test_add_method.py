"""The documented walk-through: a method defined outside the package runs through the pipeline."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]

METHOD = textwrap.dedent('''
    import numpy as np

    from liegan_core.methods import Discovery, register


    @register("mymethod")
    class MyMethod:
        """A toy: a random antisymmetric block (some rotation generator), to exercise the plumbing."""

        def skip(self, data, space):
            return None if data.x_rep["type"] == "vector" else "needs vector inputs"

        def fit(self, data, space, budget, seed, params, ctx):
            rng = np.random.default_rng(seed)
            blocks = rng.normal(size=(space.channels, space.matrix_size, space.matrix_size))
            blocks = blocks - blocks.transpose(0, 2, 1)  # antisymmetric: a rotation generator
            return Discovery(generators=space.effective(blocks), log=[{"epoch": 1, "loss": 0.0}])
''')


def test_new_method_runs_through_the_pipeline_via_entry_point(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "my_method.py").write_text(METHOD)
    # an installed distribution's metadata with the entry point, as `pip install` would write it
    dist = plugins / "my_method_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-method-pkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[liegan_core.methods]\nmymethod = my_method:MyMethod\n")

    bench = tmp_path / "benchmarks"
    bench.mkdir()
    task = yaml.safe_load((ROOT / "benchmarks/two_body.yaml").read_text())
    task["methods"] = {"liegan": task["methods"]["liegan"], "mymethod": {"epochs": 1, "batch_size": 64}}
    (bench / "two_body.yaml").write_text(yaml.safe_dump(task))
    prof = yaml.safe_load((ROOT / "benchmarks/profiles/tiny.yaml").read_text())
    prof.update(benchmarks_dir=str(bench), seeds=[0, 1])
    (tmp_path / "profile.yaml").write_text(yaml.safe_dump(prof))

    env = {**__import__("os").environ, "PYTHONPATH": str(plugins)}
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "--cores", "2",
         "--configfile", str(tmp_path / "profile.yaml")],
        capture_output=True, text=True, env=env, timeout=900,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    tidy = pd.read_csv(tmp_path / "results/tables/discovery.csv")
    mine = tidy[(tidy.method == "mymethod") & (tidy.metric == "algebra_similarity")]
    assert sorted(mine.seed) == [0, 1]
    assert "mymethod" in (tmp_path / "results/tables/discovery.md").read_text()
    assert (tmp_path / "results/figures/generators_two_body_mymethod.png").exists()

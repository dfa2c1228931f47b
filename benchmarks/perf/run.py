#!/usr/bin/env python
"""Performance benchmark of the LieGAN suite: how fast training runs on this machine, and why.

    python benchmarks/perf/run.py                  # default: a few minutes on 2 cores
    python benchmarks/perf/run.py --full           # fuller sweeps, 3 repeats per point (medians)
    python benchmarks/perf/run.py --help

Measured in one run, on one machine:

* ceiling     float32 matrix product throughput (2048^3 by default) at 1 thread and at --threads;
* methods     per method on the task (default two_body at the paper's settings: 14,652 pairs,
              batch 64): seconds per epoch, pairs per second, achieved GFLOP/s (analytic count,
              liegan_core.report.perf.flops_per_step) and its fraction of the ceiling, peak memory
              (ru_maxrss of the measuring process, a fresh one per point); "reference" is the plain
              PyTorch loop used before the performance work (reference_liegan.py);
* ensemble    LieGAN with S seeds batched in one process (LieGAN.fit_seeds), per seed;
* processes   8 seeds (16 with --full) as one ensemble per process vs. one seed per process,
              --processes processes side by side with 1 thread each;
* scaling     seconds per epoch vs dataset size, channels c, data dimension n (full n x n search
              space), batch size and threads.

Outputs in --out (default results/perf): perf.csv (tidy: one row per measurement and metric),
perf.md (summary), perf.png / perf.pdf (figure), machine.json (CPU, threads, versions, load),
and jobs.csv / jobs.md aggregated from Snakemake's benchmark files under --benchmarks-dir when
there are any. Each point runs in its own Python process (`--worker`), so memory peaks do not mix.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TARGET_SECONDS_PER_EPOCH = 0.45
TARGET_PEAK_MB = 2048


# --------------------------------------------------------------------------- worker side
def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _load_data(spec: dict[str, Any]):
    import numpy as np

    from liegan_core.data import load
    from liegan_core.data.dataset import Dataset

    if spec["kind"] == "file":
        ds = load(spec["path"]).split("train")
    else:  # synthetic vectors in R^n, for timing only
        rng = np.random.default_rng(0)
        rows, n = int(spec["rows"]), int(spec["n"])
        x = rng.normal(size=(rows, 1, n)).astype(np.float32)
        rep = {"type": "vector", "n": n}
        ds = Dataset(x=x, y=x.copy(), splits={"train": np.arange(rows)}, x_rep=rep, y_rep=dict(rep))
    rows = spec.get("rows")
    if rows and rows < len(ds.x):
        ds.x, ds.y = ds.x[:rows], ds.y[:rows]
    return ds


def _fit(method: str, data, space, budget, seeds: list[int], params: dict[str, Any]):
    from liegan_core.methods import RunContext, get_method

    if method == "reference":
        sys.path.insert(0, str(HERE))
        from reference_liegan import fit_reference

        return [fit_reference(data, space, budget, seeds[0], params)]
    if method == "liegan" and len(seeds) > 1:
        return get_method(method).fit_seeds(data, space, budget, seeds, params, RunContext())
    return [get_method(method).fit(data, space, budget, seeds[0], params, RunContext())]


def worker_train(cfg: dict[str, Any]) -> dict[str, Any]:
    """Time `epochs` epochs of one method after a short warm-up; per-epoch seconds from the method's log."""
    import torch

    from liegan_core.methods import Budget, SearchSpace

    torch.set_num_threads(int(cfg["threads"]))
    data = _load_data(cfg["data"])
    space = SearchSpace.from_config(cfg["space"])
    seeds = list(cfg["seeds"])
    bs = int(cfg["batch_size"])
    rss_loaded = _rss_mb()
    # warm-up on 3 batches: thread pools, allocator, kernels chosen
    import numpy as np

    warm = type(data)(x=data.x[: 3 * bs], y=data.y[: 3 * bs], splits={"all": np.arange(min(3 * bs, len(data.x)))},
                      x_rep=data.x_rep, y_rep=data.y_rep)
    _fit(cfg["method"], warm, space, Budget(epochs=1, batch_size=bs), seeds, cfg["params"])
    epochs = int(cfg["epochs"])
    t0, c0 = time.perf_counter(), time.process_time()
    out = _fit(cfg["method"], data, space, Budget(epochs=epochs, batch_size=bs), seeds, cfg["params"])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    per_epoch = [float(r["seconds"]) for r in out[0].log if "seconds" in r]
    if len(per_epoch) != epochs:
        per_epoch = [wall / epochs] * epochs
    return {
        "seconds_per_epoch": statistics.median(per_epoch),
        "epoch_seconds": per_epoch,
        "fit_seconds": wall,
        "cpu_seconds_per_epoch": cpu / epochs,
        "rows": len(data.x),
        "steps_per_epoch": -(-len(data.x) // bs),
        "peak_rss_mb": _rss_mb(),
        "rss_after_data_mb": rss_loaded,
        "blocks": [o.info.get("blocks").tolist() if hasattr(o.info.get("blocks"), "tolist") else None for o in out],
    }


def worker_ceiling(cfg: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(int(cfg["threads"]))
    size, reps = int(cfg["size"]), int(cfg["repeats"])
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return {"gflops": 2 * size**3 / med / 1e9, "seconds": med, "best_gflops": 2 * size**3 / min(times) / 1e9}


def run_worker(raw: str) -> None:
    cfg = json.loads(raw)
    result = {"ceiling": worker_ceiling, "train": worker_train}[cfg["kind"]](cfg)
    print("RESULT " + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- driver side
class Runner:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.rows: list[dict[str, Any]] = []
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.ceiling: dict[int, float] = {}

    def spawn(self, cfg: dict[str, Any]) -> subprocess.Popen:
        env = {**os.environ, "OMP_NUM_THREADS": str(cfg.get("threads", 1)), "PYTHONUNBUFFERED": "1"}
        return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(cfg)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(ROOT))

    @staticmethod
    def collect(proc: subprocess.Popen, cfg: dict[str, Any]) -> dict[str, Any] | None:
        out, err = proc.communicate()
        for line in out.splitlines():
            if line.startswith("RESULT "):
                return json.loads(line[7:])
        print(f"perf: point failed ({cfg.get('method', cfg['kind'])}): {err.strip().splitlines()[-1:] or proc.returncode}",
              file=sys.stderr)
        return None

    def measure(self, cfg: dict[str, Any]) -> dict[str, Any] | None:
        """Median over --repeats fresh processes (each its own peak memory)."""
        results = [r for r in (self.collect(self.spawn(cfg), cfg) for _ in range(self.args.repeats)) if r]
        if not results:
            return None
        best = dict(results[0])
        for key in ("seconds_per_epoch", "cpu_seconds_per_epoch", "gflops", "fit_seconds", "peak_rss_mb"):
            if key in best:
                best[key] = statistics.median(r[key] for r in results)
        best["repeats"] = len(results)
        return best

    def add(self, section: str, labels: dict[str, Any], metrics: dict[str, float]) -> None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        for metric, value in metrics.items():
            self.rows.append({"section": section, **labels, "metric": metric, "value": value, "load_1min": load})

    def train_cfg(self, **kw: Any) -> dict[str, Any]:
        cfg = {"kind": "train", "threads": self.args.threads, "method": "liegan", "seeds": [0], "params": {},
               "batch_size": 64, "epochs": self.args.epochs, "data": {"kind": "file", "path": str(self.data_path)},
               "space": self.space}
        cfg.update(kw)
        return cfg

    def record_train(self, section: str, cfg: dict[str, Any], res: dict[str, Any], extra: dict[str, Any] | None = None,
                     full_rows: int | None = None) -> dict[str, float]:
        from liegan_core.report.perf import flops_per_step

        seeds = len(cfg["seeds"])
        spe = res["seconds_per_epoch"]
        scale = 1.0
        if full_rows:  # measured on a subset: per epoch of the full data set, at the same per-step cost
            scale = -(-full_rows // cfg["batch_size"]) / res["steps_per_epoch"]
        method = cfg["method"]
        sizes = self.net_sizes(cfg)
        impl = "algorithm" if method in ("reference", "augerino", "liegg") else "executed"
        flop_method = "liegan" if method in ("reference", "liegan") else method
        channels = int(cfg["space"].get("channels", 1))
        f_exec = flops_per_step(flop_method, sizes, cfg["batch_size"], channels, impl) * res["steps_per_epoch"] * seeds
        f_alg = flops_per_step(flop_method, sizes, cfg["batch_size"], channels, "algorithm") * res["steps_per_epoch"] * seeds
        ceiling = self.ceiling.get(int(cfg["threads"]), float("nan"))
        metrics = {
            "seconds_per_epoch": spe * scale,
            "seconds_per_epoch_per_seed": spe * scale / seeds,
            "samples_per_second": res["rows"] * seeds / spe,
            "cpu_seconds_per_epoch_per_seed": res["cpu_seconds_per_epoch"] * scale / seeds,
            "gflop_per_epoch_per_seed": f_exec * scale / seeds / 1e9,
            "gflop_per_s": f_exec / spe / 1e9 if f_exec else float("nan"),
            "gflop_per_s_algorithm_count": f_alg / spe / 1e9 if f_alg else float("nan"),
            "fraction_of_ceiling": f_exec / spe / 1e9 / ceiling if f_exec else float("nan"),
            "peak_rss_mb": res["peak_rss_mb"],
        }
        labels = {"task": cfg.get("task", "two_body"), "method": method, "seeds": seeds, "threads": cfg["threads"],
                  "batch_size": cfg["batch_size"], "rows": full_rows or res["rows"],
                  "channels": channels, "n": int(cfg["space"]["n"]), "block": cfg["space"].get("block") or 0,
                  "processes": 1, **(extra or {})}
        self.add(section, labels, metrics)
        spe_seed = metrics["seconds_per_epoch_per_seed"]
        print(f"  {section:9s} {method:11s} S={seeds:<2d} thr={cfg['threads']} bs={cfg['batch_size']:<4d} "
              f"rows={labels['rows']:<6d} c={channels} n={labels['n']:<3d}: {spe_seed:.3f} s/epoch/seed, "
              f"{metrics['gflop_per_s']:.0f} GFLOP/s ({100 * metrics['fraction_of_ceiling']:.0f}% of ceiling), "
              f"peak {metrics['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)
        return metrics

    def net_sizes(self, cfg: dict[str, Any]) -> list[int]:
        from liegan_core.methods.liegan import DEFAULTS

        n = int(cfg["space"]["n"])
        in_xy = self.data_dims.get(cfg["data"].get("path"), (n, n)) if cfg["data"]["kind"] == "file" else (n, n)
        method = cfg["method"]
        params = cfg["params"]
        if method in ("liegan", "reference", "symmetrygan"):
            return [sum(in_xy), *params.get("discriminator_hidden", DEFAULTS["discriminator_hidden"]), 1]
        if method in ("augerino", "liegg"):
            return [in_xy[0], *params.get("predictor_hidden", [128, 128]), in_xy[1]]
        return []

    # ------------------------------------------------------------------ sections
    def prepare(self) -> None:
        import numpy as np

        from liegan_core.config import read_yaml
        from liegan_core.data import generate

        task = read_yaml(ROOT / "benchmarks" / f"{self.args.task}.yaml")
        self.task_cfg = task
        self.space = dict(task["search_space"])
        self.methods_cfg = task.get("methods", {})
        cache = self.out / "cache"
        cache.mkdir(exist_ok=True)
        self.data_path = cache / f"{self.args.task}.npz"
        if not self.data_path.exists():
            data = task["data"]
            t = time.perf_counter()
            ds = generate(data["generator"], data.get("params") or {}, int(data.get("seed", 0)))
            ds.save(self.data_path)
            print(f"perf: generated {self.args.task} ({time.perf_counter() - t:.1f} s)", file=sys.stderr)
        with np.load(self.data_path) as z:
            x, y = z["x"], z["y"]
            train = z["split_train"] if "split_train" in z else np.arange(len(x))
        self.full_rows = int(len(train))
        self.data_dims = {str(self.data_path): (int(np.prod(x.shape[1:])), int(np.prod(y.shape[1:])))}

    def section_ceiling(self) -> None:
        threads = sorted({1, self.args.threads})
        for t in threads:
            res = self.measure({"kind": "ceiling", "threads": t, "size": self.args.ceiling_size,
                                "repeats": 7 if self.args.full else 5})
            if res:
                self.ceiling[t] = res["gflops"]
                self.add("ceiling", {"method": "matmul", "threads": t, "n": self.args.ceiling_size},
                         {"gflop_per_s": res["gflops"], "best_gflop_per_s": res["best_gflops"]})
                print(f"  ceiling   {self.args.ceiling_size}^3 fp32 matmul, {t} thread(s): {res['gflops']:.0f} GFLOP/s",
                      file=sys.stderr, flush=True)

    def section_methods(self) -> None:
        methods = ["reference", "liegan", *[m for m in self.args.methods if m not in ("liegan", "reference")]]
        for method in methods:
            params = {k: v for k, v in (self.methods_cfg.get(method if method != "reference" else "liegan") or {}).items()
                      if k not in ("epochs", "batch_size")}
            bs = int((self.methods_cfg.get(method if method != "reference" else "liegan") or {}).get("batch_size", 64))
            epochs = 1 if method == "reference" else self.args.epochs
            cfg = self.train_cfg(method=method, params=params, batch_size=bs, epochs=epochs)
            res = self.measure(cfg)
            if res:
                self.record_train("methods", cfg, res)
                if method == "reference":
                    self.reference_blocks = res["blocks"]
                if method == "liegan":
                    self.liegan_params = params

    def section_ensemble(self) -> None:
        params = getattr(self, "liegan_params", {})
        for s in self.args.ensemble_sizes:
            for threads in sorted({1, self.args.threads}) if s in (1, 4, 8) else [self.args.threads]:
                cfg = self.train_cfg(seeds=list(range(s)), params=params, threads=threads,
                                     epochs=1 if s > 1 else self.args.epochs)
                res = self.measure(cfg)
                if res:
                    self.record_train("ensemble", cfg, res)

    def section_processes(self) -> None:
        """--process-seeds seeds, 1 thread per process, --processes processes side by side: an ensemble
        per process, or one seed per process (in waves)."""
        params = getattr(self, "liegan_params", {})
        seeds = list(range(self.args.process_seeds))
        procs = self.args.processes
        layouts = {"ensemble per process": [seeds[i::procs] for i in range(procs)],
                   "one seed per process": [[s] for s in seeds]}
        for name, groups in layouts.items():
            epoch_wall, peak, done = 0.0, 0.0, 0
            for wave in range(0, len(groups), procs):
                batch = groups[wave: wave + procs]
                cfgs = [self.train_cfg(seeds=g, params=params, threads=1, epochs=1) for g in batch]
                running = [(self.spawn(c), c) for c in cfgs]
                results = [self.collect(p, c) for p, c in running]
                if not all(results):
                    return
                epoch_wall += max(r["seconds_per_epoch"] for r in results)
                peak = max(peak, *(r["peak_rss_mb"] for r in results))
                done += sum(len(c["seeds"]) for c in cfgs)
            labels = {"task": self.args.task, "method": "liegan", "seeds": done, "threads": 1, "batch_size": 64,
                      "rows": self.full_rows, "channels": int(self.space.get("channels", 1)), "n": int(self.space["n"]),
                      "block": self.space.get("block") or 0, "processes": procs, "layout": name}
            from liegan_core.report.perf import flops_per_step

            flops = flops_per_step("liegan", self.net_sizes(cfgs[0]), 64, implementation="executed") \
                * -(-self.full_rows // 64) * done
            ceiling = self.ceiling.get(procs, self.ceiling.get(max(self.ceiling, default=1), float("nan")))
            self.add("processes", labels, {
                "seconds_per_epoch_per_seed": epoch_wall / done, "peak_rss_mb": peak,
                "gflop_per_s": flops / epoch_wall / 1e9, "fraction_of_ceiling": flops / epoch_wall / 1e9 / ceiling,
            })
            print(f"  processes {name}: {procs} at a time, 1 thread each: {epoch_wall / done:.3f} s/epoch/seed",
                  file=sys.stderr, flush=True)

    def section_scaling(self) -> None:
        params = getattr(self, "liegan_params", {})
        sub = 64 * self.args.sweep_steps
        for frac in self.args.sizes:
            rows = max(64, int(round(self.full_rows * frac)))
            # small data sets: several epochs (median), so that each point trains on about the full set
            epochs = max(self.args.epochs, min(8, round(1 / frac)))
            cfg = self.train_cfg(params=params, epochs=epochs, data={"kind": "file", "path": str(self.data_path), "rows": rows})
            res = self.measure(cfg)
            if res:
                self.record_train("size", cfg, res)
        for c in self.args.channels:
            cfg = self.train_cfg(params=params, epochs=1, space={**self.space, "channels": c},
                                 data={"kind": "file", "path": str(self.data_path), "rows": sub})
            res = self.measure(cfg)
            if res:
                self.record_train("channels", cfg, res, full_rows=self.full_rows)
        for n in self.args.dims:
            cfg = self.train_cfg(params=params, epochs=1, space={"n": n, "channels": 1}, task="synthetic",
                                 data={"kind": "synthetic", "n": n, "rows": sub})
            res = self.measure(cfg)
            if res:
                self.record_train("dimension", cfg, res, full_rows=self.full_rows)
        for bs in self.args.batch_sizes:
            cfg = self.train_cfg(params=params, epochs=1, batch_size=bs)
            res = self.measure(cfg)
            if res:
                self.record_train("batch", cfg, res)

    # ------------------------------------------------------------------ outputs
    def write(self) -> None:
        import pandas as pd

        from liegan_core.io import write_text

        df = pd.DataFrame(self.rows)
        write_text(self.out / "perf.csv", df.to_csv(index=False))
        write_text(self.out / "perf.md", summary_markdown(df, self.ceiling))
        try:
            figure(df, self.out)
        except Exception as err:  # noqa: BLE001 - the CSV is the result; a figure problem must not lose it
            print(f"perf: figure failed: {err}", file=sys.stderr)


def _metric(df, section: str, metric: str, **where: Any):
    sub = df[(df.section == section) & (df.metric == metric)]
    for k, v in where.items():
        sub = sub[sub[k] == v]
    return sub


def summary_markdown(df, ceiling: dict[int, float]) -> str:
    import numpy as np

    lines = ["# LieGAN performance on this machine", ""]
    lines += ["Ceiling (float32 matrix product): " + ", ".join(f"{v:.0f} GFLOP/s at {t} thread(s)"
                                                                for t, v in sorted(ceiling.items())), ""]
    cols = ["section", "method", "seeds", "threads", "batch_size", "rows", "channels", "n"]
    sub = df[df.section.isin(["methods", "ensemble"])]
    wide = sub.pivot_table(index=cols, columns="metric", values="value", aggfunc="first").reset_index()
    load = sub.groupby(cols)["load_1min"].first().reset_index() if "load_1min" in sub else None
    if load is not None:
        wide = wide.merge(load, on=cols, how="left")
    order = {"reference": 0, "liegan": 1}
    wide = wide.assign(_s=wide.section.map({"methods": 0, "ensemble": 1}), _m=wide.method.map(order).fillna(2))
    wide = wide.sort_values(["_s", "_m", "method", "seeds", "threads"]).drop(columns=["_s", "_m"])
    if not wide.empty:
        lines += ["| section | method | seeds | threads | s/epoch | s/epoch/seed | CPU s/epoch/seed | pairs/s | GFLOP/s | "
                  "of ceiling | peak MB | load |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for _, r in wide.iterrows():
            lines.append(f"| {r.section} | {r.method} | {int(r.seeds)} | {int(r.threads)} | {r.seconds_per_epoch:.3f} | "
                         f"{r.seconds_per_epoch_per_seed:.3f} | {r.cpu_seconds_per_epoch_per_seed:.3f} | "
                         f"{r.samples_per_second:.0f} | {r.gflop_per_s:.0f} | {100 * r.fraction_of_ceiling:.0f}% | "
                         f"{r.peak_rss_mb:.0f} | {r.get('load_1min', float('nan')):.1f} |")
        lines.append("")
        lines.append("GFLOP/s counts the FLOPs each implementation executes (liegan_core.report.perf.flops_per_step); "
                     "the reference executes the published procedure's count. CPU s: user + system time of the "
                     "measuring process (less sensitive than wall time to other work on the machine); load: the "
                     "1-minute load average when the point finished (above the number of cores, wall times are "
                     "inflated by other processes).")
        lines.append("")
        ref = wide[(wide.method == "reference")]
        new = wide[(wide.method == "liegan") & (wide.seeds == 1)]
        if len(ref) and len(new):
            r0 = ref.iloc[0]
            n0 = new[new.threads == r0.threads]
            if len(n0):
                lines.append(f"Speed-up of one seed over the reference loop at {int(r0.threads)} thread(s): "
                             f"{r0.seconds_per_epoch / n0.iloc[0].seconds_per_epoch:.2f}x.")
        best = wide[wide.method == "liegan"].sort_values("seconds_per_epoch_per_seed").head(1)
        procs = _metric(df, "processes", "seconds_per_epoch_per_seed").sort_values("value").head(1)
        candidates = []
        if len(best):
            b = best.iloc[0]
            candidates.append((b.seconds_per_epoch_per_seed, f"{int(b.seeds)} seed(s) in one process, {int(b.threads)} thread(s)"))
        if len(procs):
            p = procs.iloc[0]
            candidates.append((p.value, f"{int(p.seeds)} seeds, {p.layout}, {int(p.processes)} processes x 1 thread"))
        if candidates:
            value, how = min(candidates)
            lines.append(f"Best LieGAN time per epoch per seed: {value:.3f} s ({how}); target < "
                         f"{TARGET_SECONDS_PER_EPOCH} s: {'met' if value < TARGET_SECONDS_PER_EPOCH else 'NOT met'} on this run.")
        peak = df[df.metric == "peak_rss_mb"].value.max()
        if np.isfinite(peak):
            lines.append(f"Largest peak memory of a measuring process: {peak:.0f} MB "
                         f"(target < {TARGET_PEAK_MB} MB: {'met' if peak < TARGET_PEAK_MB else 'NOT met'}).")
        lines.append("")
    proc = df[(df.section == "processes")]
    if not proc.empty:
        lines += ["## Several seeds on the cores", ""]
        frac = proc[proc.metric == "fraction_of_ceiling"].set_index("layout")["value"]
        for _, r in proc[proc.metric == "seconds_per_epoch_per_seed"].iterrows():
            lines.append(f"- {r.layout}: {int(r.processes)} processes at a time, 1 thread each, {int(r.seeds)} seeds: "
                         f"{r.value:.3f} s/epoch/seed, {100 * frac.get(r.layout, float('nan')):.0f}% of the "
                         f"{int(r.processes)}-thread ceiling (load {r.load_1min:.1f})")
        lines.append("")
    for section, key, label in (("size", "rows", "training pairs"), ("channels", "channels", "channels c"),
                                ("dimension", "n", "data dimension n (full n x n search space)"),
                                ("batch", "batch_size", "batch size")):
        sub = _metric(df, section, "seconds_per_epoch")
        if sub.empty:
            continue
        lines += [f"## Seconds per epoch vs {label}", "", f"| {key} | s/epoch | pairs/s |", "|---|---|---|"]
        sps = _metric(df, section, "samples_per_second").set_index(key)["value"]
        for _, r in sub.sort_values(key).iterrows():
            lines.append(f"| {int(r[key])} | {r.value:.3f} | {sps.get(r[key], float('nan')):.0f} |")
        if section == "size" and len(sub) >= 2:
            slope = np.polyfit(np.log(sub["rows"].astype(float)), np.log(sub["value"].astype(float)), 1)[0]
            lines.append("")
            lines.append(f"log-log slope {slope:.2f} (1 = linear in the data set size).")
        if section in ("channels", "dimension"):
            lines.append("")
            lines.append("Measured on a subset and scaled to the full data set's number of steps.")
        lines.append("")
    return "\n".join(lines) + "\n"


def _value_ticks(ax, values) -> None:
    """Ticks at the measured values, written plainly (no 3x10^0 minor labels on log axes)."""
    from matplotlib.ticker import NullFormatter

    ticks = sorted({int(v) for v in values})
    ax.set_xticks(ticks, labels=[str(t) for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())


def figure(df, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5))
    ax = axes[0, 0]
    sub = _metric(df, "ensemble", "seconds_per_epoch_per_seed")
    if not sub.empty:
        sns.lineplot(data=sub, x="seeds", y="value", hue="threads", marker="o", ax=ax, palette="deep")
        procs = _metric(df, "processes", "seconds_per_epoch_per_seed")
        for _, r in procs.iterrows():
            per_proc = max(1, int(r.seeds) // int(r.processes)) if r.layout.startswith("ensemble") else 1
            ax.plot([per_proc], [r.value], marker="*" if per_proc > 1 else "X", ms=11, ls="",
                    label=f"{int(r.processes)} processes x 1 thread, {r.layout}")
        ax.axhline(TARGET_SECONDS_PER_EPOCH, ls="--", c="k", lw=0.8, label=f"target {TARGET_SECONDS_PER_EPOCH} s")
        ax.legend(title="threads (lines)", fontsize=7)
        ax.set(xscale="log", xlabel="seeds batched in one process (S)", ylabel="s / epoch / seed",
               title="Ensemble of seeds", ylim=(0, None))
        _value_ticks(ax, sub.seeds)
    ax = axes[0, 1]
    sub = _metric(df, "methods", "seconds_per_epoch")
    if not sub.empty:
        sns.barplot(data=sub, x="method", y="value", ax=ax, color="C0")
        frac = _metric(df, "methods", "fraction_of_ceiling").set_index("method")["value"]
        for i, m in enumerate(sub.method):
            f = frac.get(m)
            if f is not None and f == f:
                ax.text(i, sub.value.iloc[i], f"{100 * f:.0f}%", ha="center", va="bottom", fontsize=8)
        ax.set(ylabel="s / epoch", xlabel="", title="Methods (label: share of matmul ceiling)")
        ax.tick_params(axis="x", rotation=20)
    for ax, section, key, title, logx in ((axes[0, 2], "size", "rows", "vs data set size", False),
                                          (axes[1, 0], "channels", "channels", "vs channels c", False),
                                          (axes[1, 1], "dimension", "n", "vs data dimension n", False),
                                          (axes[1, 2], "batch", "batch_size", "vs batch size", True)):
        sub = _metric(df, section, "seconds_per_epoch")
        if sub.empty:
            ax.set_visible(False)
            continue
        sub = sub.sort_values(key)
        sns.lineplot(data=sub, x=key, y="value", marker="o", ax=ax)
        if section == "size":
            x0, y0 = float(sub[key].iloc[-1]), float(sub.value.iloc[-1])
            ax.plot(sub[key], y0 * sub[key] / x0, ls=":", c="gray", label="proportional to size")
            ax.legend()
        if logx:
            ax.set(xscale="log")
            _value_ticks(ax, sub[key])
        ax.set(ylabel="s / epoch", title=f"LieGAN, one seed, {title}", ylim=(0, None))
    fig.tight_layout()
    for ext in ("png", "pdf"):
        fig.savefig(out / f"perf.{ext}", dpi=150)
    plt.close(fig)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "results" / "perf"), help="output folder (default results/perf)")
    p.add_argument("--benchmarks-dir", default=str(ROOT / "results" / "benchmarks"),
                   help="Snakemake benchmark TSVs to aggregate into jobs.csv (skipped when absent)")
    p.add_argument("--task", default="two_body", help="benchmark YAML in benchmarks/ (default two_body)")
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1), help="torch threads (default 2)")
    p.add_argument("--processes", type=int, default=_cpus(),
                   help="processes side by side in the 'processes' section (default: the CPUs available)")
    p.add_argument("--methods", nargs="*", default=None,
                   help="methods besides liegan and the reference loop (default: symmetrygan augerino liegg)")
    p.add_argument("--full", action="store_true", help="fuller sweeps, 3 repeats per point, 3 epochs")
    p.add_argument("--repeats", type=int, help="fresh processes per point (median); default 1, --full 3")
    p.add_argument("--epochs", type=int, help="timed epochs per point (median); default 1, --full 3")
    p.add_argument("--only", nargs="*", choices=["ceiling", "methods", "ensemble", "processes", "scaling", "jobs"],
                   help="run only these sections")
    p.add_argument("--ceiling-size", type=int, default=2048)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    full = args.full
    args.repeats = args.repeats or (3 if full else 1)
    args.epochs = args.epochs or (3 if full else 1)
    if args.methods is None:
        args.methods = ["symmetrygan", "augerino", "liegg"]
    args.ensemble_sizes = [1, 2, 4, 8, 16] if full else [1, 2, 4, 8]
    args.sizes = [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1] if full else [1 / 8, 1 / 2, 1]
    args.channels = [1, 2, 4, 8, 16] if full else [1, 4, 16]
    args.dims = [2, 3, 4, 8, 16, 32] if full else [2, 4, 8, 16]
    args.batch_sizes = [16, 32, 64, 128, 256, 512] if full else [32, 64, 256]
    args.sweep_steps = 60 if full else 30
    args.process_seeds = 16 if full else 8
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.worker:
        run_worker(args.worker)
        return
    sys.path.insert(0, str(ROOT))
    from liegan_core.report.perf import aggregate_jobs, write_machine_info

    t0 = time.perf_counter()
    r = Runner(args)
    sections = args.only or ["ceiling", "methods", "ensemble", "processes", "scaling", "jobs"]
    info_start = write_machine_info(r.out / "machine.json", {"benchmark_threads": args.threads})
    print(f"perf: {info_start['cpu_model']}, {info_start['logical_cpus']} logical CPUs, load "
          f"{info_start['load_average_1_5_15']}, {args.threads} thread(s) -> {r.out}", file=sys.stderr, flush=True)
    if set(sections) & {"methods", "ensemble", "processes", "scaling"}:
        r.prepare()
    if "ceiling" in sections or set(sections) & {"methods", "ensemble", "processes", "scaling"}:
        r.section_ceiling()
    for name in ("methods", "ensemble", "processes", "scaling"):
        if name in sections:
            getattr(r, f"section_{name}")()
            r.write()
    r.write()
    if "jobs" in sections and Path(args.benchmarks_dir).is_dir():
        jobs = aggregate_jobs(args.benchmarks_dir, r.out)
        print(f"perf: {len(jobs)} Snakemake job records -> {r.out / 'jobs.csv'}", file=sys.stderr)
    write_machine_info(r.out / "machine.json", {
        "benchmark_threads": args.threads, "benchmark_seconds": time.perf_counter() - t0,
        "load_average_at_start": info_start["load_average_1_5_15"], "arguments": sys.argv[1:],
    })
    print(f"perf: done in {time.perf_counter() - t0:.0f} s; see {r.out / 'perf.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()

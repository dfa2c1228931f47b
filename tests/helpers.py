"""Small datasets shared by the training tests (imported as `from helpers import ...`)."""
import numpy as np

from liegan_core.data.dataset import Dataset


def vector_pairs(rows: int = 150, seed: int = 0, label: bool = False) -> Dataset:
    """2-body-like pairs in R^8 (four 2-vectors), x [rows, 1, 8]: y = 1.1 x + noise, or with
    label=True a class (|x| above sqrt(8)). 150 rows at batch 64: batches of 64, 64 and a short 22."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 1, 8)).astype(np.float32)
    rep = {"type": "vector", "n": 8}
    if label:
        y = (np.linalg.norm(x, axis=(1, 2)) > np.sqrt(8)).astype(np.int64)
        return Dataset(x=x, y=y, splits={"train": np.arange(rows)}, x_rep=rep, y_rep={"type": "label", "classes": 2})
    y = (x * 1.1 + 0.05 * rng.normal(size=x.shape)).astype(np.float32)
    return Dataset(x=x, y=y, splits={"train": np.arange(rows)}, x_rep=rep, y_rep=dict(rep))

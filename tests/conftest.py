"""Shared test fixtures."""
import pytest
import torch


@pytest.fixture
def host_syncs(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts host syncs through Tensor.__bool__ (a training loop's guards): {"bool": n} after the run.

    The device context re-enters __bool__ once per call, so only the outermost call is counted.
    """
    calls = {"bool": 0, "depth": 0}
    original = torch.Tensor.__bool__

    def counting_bool(self: torch.Tensor) -> bool:
        calls["bool"] += calls["depth"] == 0
        calls["depth"] += 1
        try:
            return original(self)
        finally:
            calls["depth"] -= 1

    monkeypatch.setattr(torch.Tensor, "__bool__", counting_bool)
    return calls

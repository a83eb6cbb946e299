import matplotlib
import pytest
import torch

matplotlib.use("Agg")
torch.set_num_threads(2)


def _hook_count(model: torch.nn.Module) -> int:
    n = 0
    for m in model.modules():
        n += len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        n += len(getattr(m, "_backward_pre_hooks", {}))
    return n


@pytest.fixture
def hook_count():
    """Count every hook registered on a model's modules (0 means netxray left nothing)."""
    return _hook_count


@pytest.fixture
def one_thread():
    """PyTorch on one thread for the test, as `netxray serve` runs it; restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

import math

import numpy as np
import pytest
import torch

import netxray
from lecture_reference import train_lecture
from netxray import data
from netxray.training import load_checkpoint


def test_full_batch_training_equals_the_lectures_numpy_loop():
    lec = train_lecture(50)
    ref_losses, W1, W2 = lec.losses, lec.W1, lec.W2
    tr, _ = data.moons(400, 0.25, 5).split(0.3, 5)
    m = netxray.mlp([2, 10, 2], init="lecture", seed=5, dtype=torch.float64)
    h = netxray.train(m, tr.tensors(torch.float64), epochs=50, lr=0.2)
    np.testing.assert_allclose(h.train_loss, ref_losses, rtol=1e-12, atol=0)
    np.testing.assert_allclose(m.fc1.weight.detach().numpy(), W1.T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(m.fc2.weight.detach().numpy(), W2.T, rtol=1e-10, atol=1e-12)


def test_history_checkpoints_and_test_curves():
    tr, te = data.moons(200, 0.2, 0).split(0.25, 0)
    m = netxray.mlp([2, 8, 2], seed=0)
    m.eval()
    h = netxray.train(m, tr.tensors(), epochs=20, lr=0.5, batch_size=32,
                      test_data=te.tensors(), checkpoints=[0, 10, 20])
    assert not m.training  # mode restored
    assert len(h.train_loss) == len(h.test_acc) == 20 and h.epochs[-1] == 20
    assert sorted(h.checkpoints) == [0, 10, 20]
    final = load_checkpoint(m, h.checkpoints[20])
    Xt, yt = te.tensors()
    loss, acc = netxray.training.evaluate(final, Xt, yt)
    assert loss == pytest.approx(h.test_loss[-1], rel=1e-6)
    start = load_checkpoint(m, h.checkpoints[0])
    assert not torch.equal(start.fc1.weight, m.fc1.weight)
    assert h.to_dict()["checkpoints"] == [0, 10, 20]


def test_divergence_is_recorded_not_raised():
    tr, _ = data.moons(100, 0.2, 0).split(0.2, 0)
    m = netxray.mlp([2, 16, 2], seed=0)
    h = netxray.train(m, tr.tensors(), epochs=30, lr=1e6)
    assert h.diverged and any(math.isnan(v) or math.isinf(v) for v in h.train_loss)


def test_bad_arguments():
    m = netxray.mlp([2, 2])
    X, y = torch.randn(4, 2), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="epochs"):
        netxray.train(m, (X, y), epochs=0, lr=0.1)
    with pytest.raises(ValueError, match="unknown optimizer"):
        netxray.train(m, (X, y), epochs=1, lr=0.1, optimizer="lbfgs")
    with pytest.raises(ValueError, match="labels must be"):
        netxray.train(m, (X, y[:3]), epochs=1, lr=0.1)
    with pytest.raises(ValueError, match="within 0..1"):
        netxray.train(m, (X, y), epochs=1, lr=0.1, checkpoints=[5])


def test_the_numpy_reference_reproduces_the_lectures_printed_losses():
    """The reference the other tests lean on prints what the lecture printed."""
    from lecture_reference import PRINTED_EPOCHS

    lec = train_lecture(300)
    assert [e for e, _, _ in PRINTED_EPOCHS] == [100, 200, 300]
    for epoch, loss, _acc in PRINTED_EPOCHS:
        assert f"{lec.losses[epoch - 1]:.4f}" == f"{loss:.4f}"


def test_labels_and_inputs_are_checked_against_the_model_before_the_first_step():
    m = netxray.mlp([4, 8, 3], seed=0)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    X, y = torch.randn(20, 4), torch.arange(20) % 3
    bad = y.clone()
    bad[5] = 7
    with pytest.raises(ValueError, match="training label 7 but the model outputs 3 classes"):
        netxray.train(m, (X, bad), epochs=2, lr=0.1)
    with pytest.raises(ValueError, match="training label -1 but the model outputs 3 classes"):
        netxray.train(m, (X.numpy(), (y - 1).numpy()), epochs=2, lr=0.1)
    with pytest.raises(ValueError, match=r"cannot take inputs of shape \(20, 5\); it expects "
                       r"\(batch, 4\)"):
        netxray.train(m, (torch.randn(20, 5), y), epochs=2, lr=0.1)
    with pytest.raises(ValueError, match="test label 3 but the model outputs 3 classes"):
        netxray.train(m, (X, y), epochs=2, lr=0.1, test_data=(X, y + 1))
    with pytest.raises(ValueError, match=r"test labels must be \(20,\), got \(19,\)"):
        netxray.train(m, (X, y), epochs=2, lr=0.1, test_data=(X, y[:19]))
    with pytest.raises(ValueError, match=r"cannot take inputs of shape \(20, 2\)"):
        netxray.train(m, (X, y), epochs=2, lr=0.1, test_data=(X[:, :2], y))
    for k, v in m.state_dict().items():  # refused before any step
        assert torch.equal(v, before[k]), k

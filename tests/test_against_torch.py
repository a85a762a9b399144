"""tinymeta against an established framework on the same weights, in float64.

PyTorch is not a dependency of tinymeta; this module runs only where it is
installed (`pip install torch`) and is skipped otherwise. The PyTorch side is
written the usual way: a Python loop over tasks, torch.autograd.grad with
create_graph=True.
"""
import numpy as np
import pytest

import tinymeta as tm

from test_meta_gradient import conv_problem, meta_loss, mlp_problem, rel_err
from conftest import t64

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def torch_mlp(p, x):
    h = TF.relu(TF.linear(x, p["w1"], p["b1"]))
    h = TF.relu(TF.linear(h, p["w2"], p["b2"]))
    return TF.linear(h, p["w3"], p["b3"])


def torch_convnet(p, x):
    h = TF.conv2d(x, p["conv"], p["conv_b"], stride=2, padding=1)
    h = TF.relu(TF.batch_norm(h, None, None, p["bn_w"], p["bn_b"], training=True))
    return TF.linear(h.mean(dim=(-2, -1)), p["head"], p["head_b"])


def torch_meta_loss(model, kind, params, batch, lr, steps):
    losses = []
    for t in range(batch[0].shape[0]):
        xs, ys, xq, yq = (torch.from_numpy(b.numpy()[t]) for b in batch)
        loss_fn = TF.mse_loss if kind == "mse" else TF.cross_entropy
        fast = dict(params)
        for _ in range(steps):
            grads = torch.autograd.grad(loss_fn(model(fast, xs), ys), list(fast.values()), create_graph=True)
            fast = {k: v - lr * g for (k, v), g in zip(fast.items(), grads)}
        losses.append(loss_fn(model(fast, xq), yq))
    return torch.stack(losses).mean()


@pytest.mark.parametrize("name", ["mlp", "conv"])
@pytest.mark.parametrize("steps", [1, 3])
def test_second_order_maml_matches_pytorch(name, steps):
    problem, tmodel, kind = {"mlp": (mlp_problem, torch_mlp, "mse"),
                             "conv": (conv_problem, torch_convnet, "ce")}[name]
    params, batch, model, task_loss, lr = problem(np.random.default_rng(11))
    ours = {k: t64(v) for k, v in params.items()}
    loss = meta_loss(model, task_loss, ours, batch, lr, steps)
    grads = {k: g.numpy() for k, g in tm.grad(loss, ours).items()}

    theirs = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    tloss = torch_meta_loss(tmodel, kind, theirs, batch, lr, steps)
    tgrads = dict(zip(theirs, (g.numpy() for g in torch.autograd.grad(tloss, list(theirs.values())))))

    assert abs(loss.item() - tloss.item()) <= 1e-12 * abs(tloss.item())
    assert rel_err(grads, tgrads) < 1e-9
    scale = max(np.abs(g).max() for g in tgrads.values())
    for k in params:  # (a conv bias before batch norm has a gradient of exactly 0 up to rounding)
        np.testing.assert_allclose(grads[k], tgrads[k], rtol=1e-9, atol=1e-13 * scale)

"""The same MAML meta-iteration, and the same prototypical-network episode, written in PyTorch,
for ``bench --compare torch``.

Two versions, as a PyTorch user would write them: a loop over tasks (torch.autograd)
and one batched call with torch.func (``vmap`` over tasks of an inner step made with
``grad``). Both start from tinymeta's initial parameters and batch, on tinymeta's
device (``.item()`` at the end waits for the GPU), take one inner SGD step, differentiate the query loss through it (second order unless
``first_order``) and make one Adam step, as tinymeta's meta-iteration does.

PyTorch is never a dependency: this module imports it inside its functions, so that
importing the module (as the API reference does) needs no PyTorch, and ``bench``
calls :func:`torch_version` before any timing, which says how to install it when it
is missing. The networks mirror :class:`tinymeta.nn.ConvNet` (the strided Omniglot
variant for MAML, the pooling one for prototypical networks) and :class:`tinymeta.nn.MLP`;
they must follow those if they change.
"""
from __future__ import annotations

from ..ops.conv import same_padding


def _conv_norm(p, x, model, i, stride):
    """Block i of ConvNet.body up to its activation: 3x3 convolution, then batch norm with the batch's own
    statistics, its scale where the model has one, and its shift."""
    import torch  # noqa: PLC0415 (here, not at the top: see the module's docstring)
    import torch.nn.functional as TF  # noqa: PLC0415
    if model.padding == "same":  # TensorFlow's rule, as ConvNet(padding="same"): the odd pixel after
        (top, bottom), (left, right) = (same_padding(s, 3, stride) for s in x.shape[-2:])
        x = TF.conv2d(TF.pad(x, (left, right, top, bottom)), p[f"conv{i}"], p[f"conv{i}_b"], stride=stride)
    else:
        x = TF.conv2d(x, p[f"conv{i}"], p[f"conv{i}_b"], stride=stride, padding=model.padding)
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
    x = (x - mean) / torch.sqrt(var + model.bn_eps)
    if f"bn{i}_w" in p:
        x = x * p[f"bn{i}_w"].view(1, -1, 1, 1)
    return x + p[f"bn{i}_b"].view(1, -1, 1, 1)


def _conv_forward(p, x, model):
    """ConvNet.body + head for one task (the strided variant): x (N, C, H, W)."""
    import torch  # noqa: PLC0415
    for i in range(1, model.blocks + 1):
        x = torch.relu(_conv_norm(p, x, model, i, stride=2))
    return x.mean(dim=(2, 3)) @ p["head"].T + p["head_b"]


def _mlp_forward(p, x, n_layers):
    import torch  # noqa: PLC0415
    for i in range(1, n_layers):
        x = torch.relu(x @ p[f"w{i}"].T + p[f"b{i}"])
    return x @ p[f"w{n_layers}"].T + p[f"b{n_layers}"]


class TorchMAML:
    """One MAML meta-iteration (1 inner step) in PyTorch: ``loop()`` and ``vmapped()``."""

    def __init__(self, kind, model, params, batch, inner_lr, meta_lr, first_order=False, device="cpu"):
        import torch  # noqa: PLC0415
        import torch.nn.functional as TF  # noqa: PLC0415
        self.first_order = first_order
        self.inner_lr = inner_lr
        dev = torch.device("cuda" if device == "cuda" else "cpu")  # the device tinymeta runs on
        self.params = {k: torch.tensor(v.numpy(), device=dev, requires_grad=True) for k, v in params.items()}
        xs, ys, xq, yq = (torch.tensor(b.numpy(), device=dev) for b in (*batch.support, *batch.query))
        self.xs, self.ys, self.xq, self.yq = xs, ys, xq, yq
        if kind == "conv":
            self.forward = lambda p, x: _conv_forward(p, x, model)
            self.loss = lambda out, y: TF.cross_entropy(out, y)
        else:
            n = len(model.sizes) - 1
            self.forward = lambda p, x: _mlp_forward(p, x, n)
            self.loss = lambda out, y: ((out - y) ** 2).mean()
        self.opt = torch.optim.Adam(list(self.params.values()), lr=meta_lr)

    def _task_loss(self, p, xs, ys, xq, yq):
        """Query loss of one task after one inner step (as a function of the meta-parameters)."""
        import torch  # noqa: PLC0415
        inner = self.loss(self.forward(p, xs), ys)
        names = list(p)
        g = torch.autograd.grad(inner, [p[k] for k in names], create_graph=not self.first_order)
        fast = {k: p[k] - self.inner_lr * gk for k, gk in zip(names, g)}
        return self.loss(self.forward(fast, xq), yq)

    def loop(self):
        """A Python loop over tasks, the way most MAML code is written."""
        self.opt.zero_grad()
        T = self.xs.shape[0]
        total = sum(self._task_loss(self.params, self.xs[t], self.ys[t], self.xq[t], self.yq[t])
                    for t in range(T)) / T
        total.backward()
        self.opt.step()
        return total.item() if not total.requires_grad else total.detach().item()

    def vmapped(self):
        """All tasks at once with torch.func: vmap over tasks of (inner grad step, query loss)."""
        from torch.func import grad, vmap  # noqa: PLC0415
        lr, fo = self.inner_lr, self.first_order

        def inner_loss(p, xs, ys):
            return self.loss(self.forward(p, xs), ys)

        def task(p, xs, ys, xq, yq):
            g = grad(inner_loss)(p, xs, ys)
            if fo:
                g = {k: v.detach() for k, v in g.items()}
            fast = {k: p[k] - lr * g[k] for k in p}
            return self.loss(self.forward(fast, xq), yq)

        self.opt.zero_grad()
        losses = vmap(task, in_dims=(None, 0, 0, 0, 0))(self.params, self.xs, self.ys, self.xq, self.yq)
        total = losses.mean()
        total.backward()
        self.opt.step()
        return total.item() if not total.requires_grad else total.detach().item()


def _pooled_body(p, x, model):
    """ConvNet.body with ``pool=True`` for one episode, x (N, C, H, W) -> (N, features): blocks of 3x3
    convolution (stride 1), batch norm with the episode's statistics, ReLU and 2x2 max-pooling, flattened."""
    import torch  # noqa: PLC0415
    import torch.nn.functional as TF  # noqa: PLC0415
    for i in range(1, model.blocks + 1):
        x = _conv_norm(p, x, model, i, stride=1)
        x = torch.relu(x) if model.activation == "relu" else TF.leaky_relu(x)
        x = TF.max_pool2d(x, 2)
    return x.flatten(1) if model.feature_mode == "flatten" else x.mean(dim=(2, 3))


class TorchProtoNet:
    """One prototypical-network training step (Snell et al. 2017) in PyTorch: ``step()``.

    Written as the original code writes it (jakesnell/prototypical-networks,
    protonets/models/few_shot.py ``Protonet.loss``): an episode's support and query images
    through the encoder in one batch, prototypes as class means, ``log_softmax`` of the negative
    squared distances, the mean negative log-probability over the queries; then one Adam step.
    A meta-batch of several episodes is a loop over them, its loss their mean (the presets train
    one episode per step). Starts from tinymeta's meta-parameters and batch, on tinymeta's device.
    """

    def __init__(self, model, params, batch, n_way, meta_lr, device="cpu"):
        import torch  # noqa: PLC0415
        dev = torch.device("cuda" if device == "cuda" else "cpu")
        self.model, self.n_way = model, int(n_way)
        self.params = {k: torch.tensor(v.numpy(), device=dev, requires_grad=True) for k, v in params.items()}
        self.xs, self.ys, self.xq, self.yq = (torch.tensor(b.numpy(), device=dev)
                                              for b in (*batch.support, *batch.query))
        self.opt = torch.optim.Adam(list(self.params.values()), lr=meta_lr)

    def loss(self):
        """The meta-batch's loss: the mean over episodes of each episode's mean query loss."""
        import torch  # noqa: PLC0415
        import torch.nn.functional as TF  # noqa: PLC0415
        losses = []
        for xs, ys, xq, yq in zip(self.xs, self.ys, self.xq, self.yq):
            z = _pooled_body(self.params, torch.cat([xs, xq]), self.model)
            zs, zq = z[:len(xs)], z[len(xs):]
            onehot = TF.one_hot(ys, self.n_way).to(z.dtype)                  # (S, n_way)
            prototypes = (onehot.T @ zs) / onehot.sum(dim=0).unsqueeze(-1)   # Eq. 1
            dists = ((zq.unsqueeze(1) - prototypes.unsqueeze(0)) ** 2).sum(-1)
            losses.append(-TF.log_softmax(-dists, dim=-1).gather(1, yq.unsqueeze(1)).mean())  # Eq. 2
        return torch.stack(losses).mean()

    def step(self):
        """One training step: the loss, its gradient, one Adam step."""
        self.opt.zero_grad()
        total = self.loss()
        total.backward()
        self.opt.step()
        return total.detach().item()


def torch_version(device="cpu") -> str:
    """Which PyTorch the comparison runs, e.g. 'torch 2.13.0 (2 threads)'; ValueError, saying how to
    install it, where PyTorch cannot be imported."""
    try:
        import torch  # noqa: PLC0415
        import torch.func  # noqa: F401, PLC0415
    except ImportError as exc:
        raise ValueError(f"--compare torch needs PyTorch, which cannot be imported here ({exc}): install it "
                         "(pip install torch) or leave out --compare") from None
    if device == "cuda":
        return f"torch {torch.__version__} on {torch.cuda.get_device_name()}"
    return f"torch {torch.__version__} ({torch.get_num_threads()} threads)"

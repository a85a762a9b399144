"""Every erratum of appendix A3, and each chapter's note on the book's mistakes, checked against the book itself.

Each test re-computes what a notebook of the book (sudharsan13296/Hands-On-Meta-Learning-With-Python)
computes, written here in our own code from reading the notebook, and shows the consequence the
chapters state. A cell is cited by its index in the notebook's list of cells, counted from 0, with
the execution count the notebook shows (``In [n]``). The book draws with ``np.random``; these
re-implementations draw the same distributions from a seeded ``Generator`` so that every test is
deterministic. If an erratum misstated the book, the book's computation would not show the stated
consequence and the test would fail.
"""
import json

import numpy as np
import pytest
from conftest import REPO

import tinymeta as tm
from tinymeta.algorithms import MAML, Objective, adml_meta_loss, fgsm, maml_meta_loss, per_task
from tinymeta.algorithms.gradient_agreement import agreement_weights
from tinymeta.nn import MLP
from tinymeta.optim import Adam
from tinymeta.tasks import MetaBatch, Sinusoid

pytestmark = pytest.mark.a3


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def book_sample_points(rng, k):
    """Notebooks 6.5, 6.7, 7.4 and 8.4, cell 5 (In [2]): x ~ U[0, 1)^50, labels fair coin flips, shape (k, 1)."""
    return rng.random((k, 50)), rng.choice([0, 1], size=k, p=[0.5, 0.5]).reshape(-1, 1).astype(float)


def book_gradient(X, Y, theta):
    """The hand-written cross-entropy gradient of cell 13 of notebooks 6.5, 7.4 and 8.4: X^T (sigmoid(X theta) - Y) / n."""
    return X.T @ (sigmoid(X @ theta) - Y) / len(Y)


def book_loss(X, Y, theta):
    """The loss the notebooks print (cell 13): the mean binary cross-entropy at theta."""
    p = sigmoid(X @ theta)
    return float((-Y.T @ np.log(p) - (1 - Y.T) @ np.log(1 - p)).item() / len(Y))


def bce(X, Y, theta):
    """The same loss on tinymeta Tensors, so that autograd can differentiate it to any order."""
    p = (tm.tensor(X) @ theta).sigmoid()
    y = tm.tensor(Y)
    return -(y * p.log() + (1 - y) * (1 - p).log()).mean()


# ---- ch. 6, "Building MAML From Scratch" (notebook 6.5) ----------------------------------------------------
def test_ch6_maml_from_scratch_takes_the_first_order_meta_gradient():
    """6.5, cell 13 (In [4]): meta_gradient += X_test^T (sigmoid(X_test theta_i') - Y_test) / n, the query gradient
    at theta_i' alone. That is first-order MAML; MAML's meta-gradient goes through the inner step."""
    rng = np.random.default_rng(0)
    Xs, Ys = book_sample_points(rng, 10)
    Xq, Yq = book_sample_points(rng, 10)
    theta, alpha = rng.normal(size=(50, 1)) * 0.1, 0.5
    theta_i = theta - alpha * book_gradient(Xs, Ys, theta)                 # the notebook's inner step
    book = book_gradient(Xq, Yq, theta_i)                                  # the notebook's "meta gradient"

    th = tm.tensor(theta, requires_grad=True)
    inner = tm.grad(bce(Xs, Ys, th), th, create_graph=True)
    exact = tm.grad(bce(Xq, Yq, th - alpha * inner), th).numpy()           # through the inner step
    first_order = tm.grad(bce(Xq, Yq, th - alpha * inner.detach()), th).numpy()
    np.testing.assert_allclose(book, first_order, rtol=1e-10, atol=1e-14)  # the book computes first-order MAML
    assert np.linalg.norm(book - exact) > 1e-3 * np.linalg.norm(exact)      # which is not MAML's meta-gradient


def test_ch6_random_labels_leave_nothing_to_learn():
    """6.5, cell 5 (In [2]): the labels are coin flips drawn independently of x, so no model, adapted or not, beats
    chance on fresh points: here logistic regression fitted to 4,000 of the book's points scores about 50% on 4,000
    others, and its loss there stays at or above ln 2."""
    rng = np.random.default_rng(1)
    X, Y = book_sample_points(rng, 4000)
    Xt, Yt = book_sample_points(rng, 4000)
    theta = np.zeros((50, 1))
    for _ in range(500):                                                    # plain gradient descent, near convergence
        theta -= 0.5 * book_gradient(X, Y, theta)
    assert book_loss(X, Y, theta) < np.log(2)                              # it fits its own sample a little ...
    accuracy = float(((sigmoid(Xt @ theta) > 0.5) == (Yt > 0.5)).mean())
    assert abs(accuracy - 0.5) < 0.03                                      # ... and is at chance on fresh points
    assert book_loss(Xt, Yt, theta) > np.log(2) - 0.005


def test_ch6_the_printed_loss_is_the_pre_update_support_loss():
    """6.5, cell 13 (In [4]): `loss` is computed in the inner loop from YHat = sigmoid(XTrain theta), before the inner
    step, and the epoch prints that value: the last task's support loss at theta, not the query loss after adaptation
    that MAML minimises."""
    rng = np.random.default_rng(2)
    theta, alpha, num_tasks = rng.normal(size=(50, 1)), 0.5, 10
    theta_, printed, support = [], None, []
    for _ in range(num_tasks):                                              # the notebook's inner loop
        XTrain, YTrain = book_sample_points(rng, 10)
        printed = book_loss(XTrain, YTrain, theta)
        theta_.append(theta - alpha * book_gradient(XTrain, YTrain, theta))
        support.append((XTrain, YTrain))
    queries = [book_sample_points(rng, 10) for _ in range(num_tasks)]
    post = np.mean([book_loss(Xq, Yq, t) for (Xq, Yq), t in zip(queries, theta_)])
    assert printed == book_loss(*support[-1], theta)                        # pre-update, last task, support set
    assert abs(printed - post) > 1e-3                                       # not the quantity MAML optimises


# ---- ch. 6, "Building ADML From Scratch" (notebook 6.7) ----------------------------------------------------
def test_ch6_adml_fgsm_with_a_one_column_softmax_is_no_attack():
    """6.7, cell 10 (In [4]): FGSM builds theta = zeros([50, 1]), YHat = softmax(X theta) over that ONE column, so
    YHat = 1, the loss is 0 for every input, its input gradient is exactly 0 and X_adv = clip(X + 0.2 sign(0)) = X."""
    rng = np.random.default_rng(3)
    X, Y = book_sample_points(rng, 10)
    x = tm.tensor(X, requires_grad=True)
    log_y_hat = tm.functional.log_softmax(x @ tm.tensor(np.zeros((50, 1))), dim=-1)
    loss = -(tm.tensor(Y) * log_y_hat).sum(axis=1).mean()
    g = tm.grad(loss, x).numpy()
    X_adv = np.clip(X + 0.2 * np.sign(g), -1.0, 1.0)
    assert loss.item() == 0.0 and not np.any(g)
    np.testing.assert_array_equal(X_adv, X)                                 # the "adversarial" inputs are the clean ones


def test_ch6_adml_pairs_clean_with_clean_where_adml_crosses():
    """6.7, cell 17 (In [6]): meta_gradient_clean uses theta_clean on the clean test samples and meta_gradient_adv
    theta_adv on the adversarial ones; ADML (Yin et al. 2018, Alg. 1) evaluates each adapted model on the OTHER kind.
    With real FGSM samples the two meta-losses are different functions of theta."""
    rng = np.random.default_rng(1)
    net = MLP((6, 8, 3))
    theta = {k: tm.tensor(rng.normal(size=v.shape), requires_grad=True)
             for k, v in net.init_params(0, "float64").items()}
    xs, xq = rng.random((4, 6, 6)), rng.random((4, 6, 6))
    ys, yq = (np.stack([rng.permutation(np.repeat(np.arange(3), 2)) for _ in range(4)]) for _ in range(2))
    b = MetaBatch(*(tm.tensor(a) for a in (xs, ys, xq, yq)))
    cls = Objective("classification")
    adml, _ = adml_meta_loss(net, cls, theta, b, 0.4, 1, 0.1)
    xs_adv = fgsm(net, cls, per_task(theta, 4), b.x_support, b.y_support, 0.1)
    xq_adv = fgsm(net, cls, per_task(theta, 4), b.x_query, b.y_query, 0.1)
    clean_clean, _ = maml_meta_loss(net, cls, theta, b, 0.4, 1)
    adv_adv, _ = maml_meta_loss(net, cls, theta, MetaBatch(xs_adv, b.y_support, xq_adv, b.y_query), 0.4, 1)
    book = clean_clean + adv_adv
    assert abs(book.item() - adml.item()) > 1e-3 * abs(adml.item())


# ---- ch. 7, "Building Meta-SGD from Scratch" (notebook 7.4) ------------------------------------------------
def test_ch7_meta_sgd_rates_from_a_normal_draw_step_uphill():
    """7.4, cell 13 (In [4]): self.alpha = np.random.normal(size=50).reshape(50, 1). About half the rates are negative,
    and theta - alpha * gradient moves those coordinates UP the support loss."""
    rng = np.random.default_rng(4)
    theta = rng.normal(size=(50, 1))
    alpha = rng.normal(size=50).reshape(50, 1)                              # the notebook's initialisation
    assert 15 <= int((alpha < 0).sum()) <= 35
    X, Y = book_sample_points(rng, 10)
    g = book_gradient(X, Y, theta)
    negative = alpha < 0
    step = np.where(negative, alpha, 0.0) * 1e-3                            # only the negative rates, a small step
    assert book_loss(X, Y, theta - step * g) > book_loss(X, Y, theta)       # uphill
    # the paper's U[0.005, 0.1] rates (Li et al. 2017, Sec. 4.1) all step downhill for a small enough step
    paper = rng.uniform(0.005, 0.1, size=(50, 1)) * 1e-3
    assert book_loss(X, Y, theta - paper * g) < book_loss(X, Y, theta)


def test_ch7_meta_sgd_updates_the_rates_with_thetas_gradient():
    """7.4, cell 13 (In [4]): self.alpha = self.alpha - self.beta * meta_gradient / num_tasks, the same vector that
    updates theta. The rates' own gradient is d L_query(theta - alpha o g_support) / d alpha = -g_support o g_query."""
    rng = np.random.default_rng(5)
    theta, alpha = rng.normal(size=(50, 1)) * 0.1, rng.uniform(0.005, 0.1, size=(50, 1))
    Xs, Ys = book_sample_points(rng, 10)
    Xq, Yq = book_sample_points(rng, 10)
    g_support = book_gradient(Xs, Ys, theta)
    book = book_gradient(Xq, Yq, theta - alpha * g_support)                 # what the notebook applies to alpha
    a = tm.tensor(alpha, requires_grad=True)
    own = tm.grad(bce(Xq, Yq, tm.tensor(theta) - a * tm.tensor(g_support)), a).numpy()
    np.testing.assert_allclose(own, -g_support * book, rtol=1e-10, atol=1e-15)
    cosine = float((own * book).sum() / np.linalg.norm(own) / np.linalg.norm(book))
    assert np.linalg.norm(own - book) > 0.5 * np.linalg.norm(book) and cosine < 0.9


# ---- ch. 7, "Sine wave Regression Using Reptile" (notebook 7.7) ---------------------------------------------
def test_ch7_reptile_tanh_output_cannot_reach_the_amplitudes():
    """7.7, cell 20 (In [8]): Yhat = tf.nn.tanh(z2), so every prediction lies in [-1, 1], while cell 6 (In [2]) draws
    amplitudes in U[0.1, 5.0]. On a task of amplitude 4.5 even the best bounded prediction has an MSE above 5."""
    rng = np.random.default_rng(6)
    w1, b1, w2, b2 = rng.random((1, 64)), rng.random(64), rng.random((64, 1)) * 50, rng.random(1)  # cell 18: U[0, 1)
    x = np.linspace(-5, 5, 100)                                              # cell 6's grid
    y_hat = np.tanh(np.tanh(x[:, None] @ w1 + b1) @ w2 + b2)                 # cell 20, even with huge weights
    assert np.all(np.abs(y_hat) <= 1.0)
    y = 4.5 * np.sin(x + 1.0)
    assert np.mean((y - np.clip(y, -1, 1)) ** 2) > 5.0                      # the floor no training can go below


def test_ch7_reptile_carries_adams_momentum_into_the_next_task():
    """7.7, cells 24 and 29 (In [10], In [13]): one tf.train.AdamOptimizer(1e-2) (beta1 = 0.9 by default) serves every
    task; only the weights are reloaded between tasks, so the momentum of task A pushes task B's first steps towards
    A's optimum. With beta1 = 0 (Reptile's Adam) the carried state holds no direction."""
    def task_b_first_step(beta1):
        w = tm.tensor(np.zeros(1), requires_grad=True)
        opt = Adam({"w": w}, lr=1e-2, betas=(beta1, 0.999))                 # one optimizer for all tasks
        for _ in range(10):                                                  # task A: minimise (w - 1)^2
            opt.step({"w": tm.tensor(2 * (w.numpy() - 1.0))})
        w.data[:] = 0.0                                                      # the weights are reloaded ...
        opt.step({"w": tm.tensor(2 * (w.numpy() + 1.0))})                   # ... task B wants w = -1
        return float(w.numpy()[0])
    assert task_b_first_step(0.9) > 0                                        # the book: B's first step goes towards A
    assert task_b_first_step(0.0) < 0                                        # Reptile's beta1 = 0: towards B


# ---- ch. 8, "Building Gradient Agreement Algorithm with MAML" (notebook 8.4) --------------------------------
def book_ga_weights(g):
    """8.4, cell 13 (In [10]): w[i] = sum_j g_i^T g_j (full dot products of the (50, 1) updates) / sum_ij |g_i^T g_j|."""
    T = len(g)
    normalization_factor = sum(abs((g[i].T @ g[j]).item()) for i in range(T) for j in range(T))
    return np.array([sum((g[i].T @ g[j]).item() for j in range(T)) for i in range(T)]) / normalization_factor


def book_ga_epoch(rng, theta, num_tasks=2, alpha=1e-4, beta=1e-4):
    """One epoch of 8.4, cell 13: inner steps, the weights, then weighted_gradient += np.sum(w[i] * meta_gradient)."""
    theta_, g = [], []
    for _ in range(num_tasks):
        XTrain, YTrain = book_sample_points(rng, 10)
        theta_.append(theta - alpha * book_gradient(XTrain, YTrain, theta))
        g.append(theta - theta_[-1])
    w = book_ga_weights(g)
    weighted_gradient = np.zeros(theta.shape)
    meta_gradients = []
    for i in range(num_tasks):
        XTest, YTest = book_sample_points(rng, 10)
        meta_gradients.append(book_gradient(XTest, YTest, theta_[i]))
        weighted_gradient += np.sum(w[i] * meta_gradients[-1])              # one number, broadcast to all 50 entries
    return theta - beta * weighted_gradient / num_tasks, g, w, meta_gradients


def test_ch8_the_books_inner_products_are_full_dot_products():
    """The withdrawn erratum said the notebook sums each update to a number first: it does not. Its numerators are the
    paper's, so its weights have the paper's signs and ratios."""
    rng = np.random.default_rng(7)
    g = [rng.normal(size=(50, 1)) for _ in range(5)]
    g[3] = -2.0 * g[0] + 0.1 * rng.normal(size=(50, 1))                     # a task that disagrees with the batch
    book, paper = book_ga_weights(g), agreement_weights(np.stack([v.ravel() for v in g]))
    np.testing.assert_array_equal(np.sign(book), np.sign(paper))
    np.testing.assert_allclose(book / book[0], paper / paper[0], rtol=1e-12)


def test_ch8_the_books_normaliser_shrinks_every_weight_when_tasks_disagree():
    """8.4, cell 13: normalization_factor sums |g_i^T g_j| over all pairs; the paper (Eshratifar et al. 2018) divides by
    sum_k |sum_j g_k^T g_j|. The book's weights are the paper's times one factor, below 1 as soon as some task agrees
    with one task and disagrees with another, and equal to 1 when no row of inner products mixes signs."""
    mixed = [np.array([[1.0], [0.0]]), np.array([[0.0], [1.0]]), np.array([[1.0], [-1.0]])]
    book, paper = book_ga_weights(mixed), agreement_weights(np.stack([v.ravel() for v in mixed]))
    np.testing.assert_allclose(paper, [0.5, 0.0, 0.5], rtol=1e-15)          # Gram row sums (2, 0, 2) / 4
    np.testing.assert_allclose(book, [0.25, 0.0, 0.25], rtol=1e-15)         # the same / 8: sum |w| = 1/2
    agreeing = [np.array([[1.0], [0.2]]), np.array([[0.5], [1.0]]), np.array([[2.0], [0.1]])]
    np.testing.assert_allclose(book_ga_weights(agreeing),
                               agreement_weights(np.stack([v.ravel() for v in agreeing])), rtol=1e-14)


def test_ch8_the_books_weighted_meta_gradient_moves_every_coordinate_alike():
    """8.4, cell 13: weighted_gradient += np.sum(w[i] * meta_gradient) adds ONE number to all 50 entries, so every
    coordinate of theta takes the same step, epoch after epoch: theta - theta_0 stays a multiple of (1, ..., 1),
    while the paper's update sum_i w_i grad L_i has 50 different entries."""
    rng = np.random.default_rng(8)
    theta0 = rng.normal(size=(50, 1))
    theta = theta0
    for _ in range(5):
        theta, g, w, meta_gradients = book_ga_epoch(rng, theta)
        paper_step = sum(w_i * m for w_i, m in zip(agreement_weights(np.stack([v.ravel() for v in g])),
                                                    meta_gradients))
        assert np.ptp(paper_step) > 1e-3 * np.abs(paper_step).max()          # the paper's step has a direction
    moved = (theta - theta0).ravel()
    assert np.abs(moved).max() > 0
    np.testing.assert_allclose(moved, np.full(50, moved.mean()), rtol=1e-9, atol=1e-15)


# ---- the chapters say what the tests above show ----------------------------------------------------------------
def chapter_text(name):
    cells = json.loads((REPO / "chapters" / name).read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells)


def test_the_chapters_state_the_books_gradient_agreement_mistakes_as_the_book_makes_them():
    for name in ("08_gradient_agreement.ipynb", "A3_errata.ipynb"):
        text = chapter_text(name)
        for withdrawn in ("sums each task's update vector to a single number", "first sums each $g_i$",
                          "scalar sums (book)", "each task's update summed to"):
            assert withdrawn not in text, f"{name} repeats the withdrawn erratum: {withdrawn!r}"
        assert "np.sum" in text and "normalis" in text and "all pairs" in text.lower().replace("**", ""), name

"""The errata of chapter 4 (relation and matching networks), checked against what the book's notebooks compute.

Each test re-computes, in NumPy written here from reading the notebook, what a notebook of the book
(sudharsan13296/Hands-On-Meta-Learning-With-Python, folder "04. Relation and Matching Networks Using Tensorflow")
computes, next to what Sung et al. (2018) and Vinyals et al. (2016) mean, and shows the consequence that chapter 4's
errata section states. Cells are cited by their index in the notebook's list of cells, counted from 0, with the
execution count the notebook shows (``In [n]``). Notebooks 4.5 and 4.9 are TensorFlow 1; their tensors are
re-computed here with the same shapes and axes. Notebooks 4.2 and 4.6 (text only) state the papers' equations.
"""
import math

import numpy as np
import pytest

pytestmark = pytest.mark.ch04


def relu(x):
    return np.maximum(x, 0.0)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def unit(z):
    return z / np.linalg.norm(z, axis=-1, keepdims=True)


# ---- notebook 4.5: the relation function's last layer skips the second ReLU ------------------------------------
def test_4_5_the_relation_function_discards_its_second_relu():
    """4.5, cell 26 (In [13]): z3 = xw_plus_b(z2, w3, b3) reads the pre-activation z2, so a2 = relu(z2) is unused and
    layers 2 and 3 are one affine map. The paper's relation module (and RelationNetwork in floodsung/LearningToCompare_FSL)
    has a ReLU after its hidden layer: the two differ wherever z2 has a negative entry."""
    rng = np.random.default_rng(0)
    w1, b1 = rng.standard_normal((2, 3)), rng.standard_normal(3)
    w2, b2 = rng.standard_normal((3, 5)), rng.standard_normal(5)
    w3, b3 = rng.standard_normal((5, 1)), rng.standard_normal(1)
    Z = rng.standard_normal((50, 2))
    a1 = relu(Z @ w1 + b1)
    z2 = a1 @ w2 + b2
    book = sigmoid(z2 @ w3 + b3)
    paper = sigmoid(relu(z2) @ w3 + b3)
    np.testing.assert_allclose(book, sigmoid(a1 @ (w2 @ w3) + (b2 @ w3 + b3)), rtol=1e-12)  # one layer, not two
    assert (z2 < 0).any()
    assert np.abs(book - paper).max() > 0.1


# ---- notebook 4.5: two embedding functions where the paper has one ---------------------------------------------
def truncated_normal(rng, shape):
    """tf.truncated_normal's law: N(0, 1) redrawn beyond two standard deviations."""
    x = rng.standard_normal(shape)
    while (bad := np.abs(x) > 2).any():
        x[bad] = rng.standard_normal(bad.sum())
    return x


def book_embedding_function(x, rng):
    """4.5, cell 18 (In [9]): relu(x @ W + b) with W (9, 1) and b (1,) made as new tf.Variables at every call."""
    return relu(x @ truncated_normal(rng, (9, 1)) + truncated_normal(rng, (1,)))


def test_4_5_support_and_query_go_through_two_different_embedding_functions():
    """4.5, cells 18-22 (In [9]-[11]): embedding_function is called once for xi and once for xj, and each call makes
    its own variables, so the same input is embedded differently as support and as query; the paper's f_phi is one
    network shared by both (Eq. 1)."""
    rng = np.random.default_rng(6)
    x = np.random.default_rng(2).random((3, 9))
    f_xi, f_xj = book_embedding_function(x, rng), book_embedding_function(x, rng)
    assert f_xi.shape == f_xj.shape == (3, 1)
    assert np.abs(f_xi - f_xj).min() > 0.1


# ---- notebook 4.5: labels independent of the inputs, and the printed loss is their variance ---------------------
def test_4_5_the_printed_loss_is_the_constant_predictors_0_25():
    """4.5, cells 5-9 and 36 (In [2]-[4], [18]): both classes are np.random.rand(1000, 18) and the label is the row's
    class, not 1(y_i == y_j) for a support example and a query (Sung et al. Eq. 2). The label carries no information
    about the inputs: the constant 0.5 has MSE 0.25, the best affine fit of all 18 columns barely less, and the notebook
    prints 0.250 at episode 100 and 0.247-0.248 to episode 900."""
    rng = np.random.default_rng(3)
    data = np.vstack([rng.random((1000, 18)), rng.random((1000, 18))])
    label = np.vstack([np.ones((1000, 1)), np.zeros((1000, 1))])
    constant = np.mean((0.5 - label) ** 2)
    X = np.hstack([data, np.ones((2000, 1))])
    fit = X @ np.linalg.lstsq(X, label, rcond=None)[0]
    best_affine = np.mean((fit - label) ** 2)
    printed = [0.250, 0.248, 0.248, 0.248, 0.247, 0.248, 0.248, 0.247, 0.248]     # episodes 100, 200, ..., 900
    assert constant == 0.25
    assert 0.24 < best_affine < 0.25
    assert all(abs(p - constant) < 0.0035 for p in printed)                # to the printed 3 decimals


# ---- notebook 4.9: the query is not normalised -------------------------------------------------------------------
def book_cosine_similarity(target, support):
    """4.9, cell 4 (In [2]), cosine_similarity: target_normed = target; each support embedding l2-normalised."""
    return unit(support) @ target


def test_4_9_the_query_norm_changes_the_attention():
    """4.9, cell 4 (In [2]): only the support embeddings are normalised, so the logits are |f(x)| cos(f(x), g(x_i))
    and scaling the query changes the attention; the cosine of Vinyals et al.'s Eq. 2 does not depend on the scale."""
    g = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    f = np.array([0.8, 0.6])
    book_1, book_10 = softmax(book_cosine_similarity(f, g)), softmax(book_cosine_similarity(10 * f, g))
    paper_1, paper_10 = softmax(unit(g) @ unit(f)), softmax(unit(g) @ unit(10 * f))
    np.testing.assert_allclose(paper_1, paper_10, rtol=1e-12)
    np.testing.assert_allclose(book_1, paper_1, rtol=1e-12)                 # equal at |f| = 1 ...
    assert np.abs(book_10 - paper_10).max() > 0.3                            # ... not at |f| = 10


# ---- notebook 4.9: the full context embedding's attention normalises over features ----------------------------------
def test_4_9_the_read_attention_is_a_softmax_over_features_not_support_examples():
    """4.9, cell 4 (In [2]), f: softmax(multiply(h, g_embedding)) with h (B, D) and g_embedding (S, B, D) normalises
    along D, and r_k sums over S. Vinyals et al. Appendix A.1, Eq. 5-6: a_i = softmax_i(h^T g(x_i)), r = sum_i a_i g(x_i),
    a convex combination of the support embeddings."""
    rng = np.random.default_rng(4)
    S, B, D = 3, 2, 4
    h = rng.standard_normal((B, D))
    g = rng.standard_normal((S, B, D))
    a_book = softmax(h * g, axis=-1)                                       # (S, B, D)
    r_book = (a_book * g).sum(axis=0)                                      # (B, D)
    a_paper = softmax(np.einsum("bd,sbd->bs", h, g), axis=-1)              # (B, S)
    r_paper = np.einsum("bs,sbd->bd", a_paper, g)
    np.testing.assert_allclose(a_book.sum(axis=-1), 1.0)                   # one per (support example, batch): features
    assert np.abs(a_book.sum(axis=0) - 1.0).max() > 0.2                    # not one over the support set
    np.testing.assert_allclose(a_paper.sum(axis=-1), 1.0)
    assert np.abs(r_book - r_paper).max() > 0.2


# ---- notebook 4.9: f returns the LSTM's output, not h_K -------------------------------------------------------------
def basic_lstm_cell(x, h, c, W, b):
    """tf.contrib.rnn.BasicLSTMCell: gates i, j, f, o from [x, h] @ W + b, forget bias 1; returns (output, c)."""
    i, j, f, o = np.split(np.concatenate([x, h], axis=-1) @ W + b, 4, axis=-1)
    c = c * sigmoid(f + 1.0) + sigmoid(i) * np.tanh(j)
    return np.tanh(c) * sigmoid(o), c


def test_4_9_f_returns_the_lstm_output_without_the_skip_connection():
    """4.9, cell 4 (In [2]), f: the loop forms h_k = output + XHat but returns output, the LSTM's h-hat_K, inside
    (-1, 1) in every coordinate; Vinyals et al.'s f(x, S) is h_K = h-hat_K + f'(x) (Appendix A.1, Eq. 4)."""
    rng = np.random.default_rng(7)
    D = 4
    W, b = 0.5 * rng.standard_normal((2 * D, 4 * D)), np.zeros(4 * D)
    for scale in (1.0, 10.0, 100.0):
        x_hat = scale * np.array([3.0, 0.0, 5.0, 1.0])
        output, _ = basic_lstm_cell(x_hat, np.zeros(D), np.zeros(D), W, b)
        book, paper = output, output + x_hat
        assert np.abs(book).max() < 1.0                                   # whatever the query's embedding
        np.testing.assert_allclose(paper - book, x_hat)
        assert np.abs(paper).max() >= 5 * scale - 1.0


# ---- notebook 4.9: a softmax on top of probabilities ---------------------------------------------------------------
def book_loss(p, y):
    """4.9, cell 4 (In [2]): sparse_softmax_cross_entropy(label, probabilities): the probabilities taken as logits."""
    return -(p[y] - np.log(np.exp(p).sum()))


def paper_loss(p, y):
    """Vinyals et al. Sec. 2.2: the negative log-likelihood of the true label, -log P(y | x, S)."""
    return -np.log(p[y])


def test_4_9_the_loss_softmaxes_probabilities_and_spans_one_nat():
    """A certain, right prediction costs ln(1 + (N-1)/e) (0.905 for 5-way) instead of 0, and a certain, wrong one
    1 + ln(1 + (N-1)/e) instead of infinity: the loss can move by one nat at most."""
    n = 5
    right, wrong = np.eye(n)[0], np.eye(n)[1]
    floor = math.log(1 + (n - 1) / math.e)
    assert book_loss(right, 0) == pytest.approx(floor) and round(floor, 3) == 0.905
    assert book_loss(wrong, 0) == pytest.approx(1 + floor)
    assert paper_loss(right, 0) == 0.0
    uniform = np.full(n, 1 / n)
    assert book_loss(uniform, 0) == pytest.approx(paper_loss(uniform, 0)) == pytest.approx(math.log(n))
    rng = np.random.default_rng(5)
    for p in rng.dirichlet(np.ones(n), size=200):                          # every distribution: within one nat
        assert floor - 1e-12 <= book_loss(p, 0) <= 1 + floor + 1e-12


# ---- the chapter says what the tests above show -----------------------------------------------------------------
def test_chapter_4_states_each_erratum_with_its_cell():
    import json

    from conftest import REPO
    cells = json.loads((REPO / "chapters" / "04_relation_and_matching_networks.ipynb").read_text())["cells"]
    text = " ".join("".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown").split())
    for citation in ("(4.5, cell 26, `In [13]`)", "(4.5, cells 18-22, `In [9]`-`In [11]`)",
                     "(4.5, cells 5-9 and 36, `In [2]`-`In [4]` and `In [18]`)",
                     "(4.9, cell 4, `In [2]`, `cosine_similarity`)", "(4.9, cell 4, `In [2]`, `f`)",
                     "(4.9, cell 4, `In [2]`, `train`)", "(4.9, cell 4, `In [2]`, `f` returns `output`)"):
        assert citation in text, citation
    assert "**4.2 is correct:**" in text and "**4.6 is correct in its equations**" in text
    assert "`Episode 100: loss 0.250`" in text and "0.905 for 5-way" in text

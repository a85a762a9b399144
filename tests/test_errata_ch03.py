"""The errata of chapter 3 (prototypical networks), checked against what the book's notebooks compute.

Each test re-computes, in NumPy written here from reading the notebook, what a notebook of the book
(sudharsan13296/Hands-On-Meta-Learning-With-Python, folder "03. Prototypical Networks and its Variants")
computes, next to what Snell et al. (2017) mean, and shows the consequence that chapter 3's errata section
states. Cells are cited by their index in the notebook's list of cells, counted from 0, with the execution
count the notebook shows (``In [n]``). Notebook 3.3 is TensorFlow 1; its tensors are re-computed here with
the same shapes and axes.
"""
import math

import numpy as np
import pytest

pytestmark = pytest.mark.ch03


def log_softmax(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def squared_distances(a, b):
    """||a_i - b_j||^2, (len(a), len(b)): the paper's d (protonets/models/utils.py:14, euclidean_dist)."""
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)


def book_euclidean_distance(a, b):
    """3.3, cell 50 (In [26]): tile a to (N, M, D) and b to (N, M, D), then reduce_mean(square(a - b), axis=2)."""
    return ((a[:, None, :] - b[None, :, :]) ** 2).mean(-1)


def book_loss_and_accuracy(support_emb, query_emb, num_classes, num_support, num_query):
    """3.3, cells 44-58 (In [23]-[30]): the notebook's prototypes, distance, log-probabilities, loss and accuracy.

    support_emb (num_classes * num_support, D) and query_emb (num_classes * num_query, D), class-major as the
    notebook reshapes its placeholders; labels y[c, q] = c (cell 64: tile(arange(num_way)[:, None], (1, Q))).
    """
    D = support_emb.shape[-1]
    prototype = support_emb.reshape(num_classes, num_support, D).mean(axis=1)          # cell 46 (In [24])
    distance = book_euclidean_distance(prototype, query_emb)                            # cell 52 (In [27]): (N, N*Q)
    predicted = log_softmax(-distance).reshape(num_classes, num_query, -1)              # cell 54 (In [28])
    y = np.tile(np.arange(num_classes)[:, None], (1, num_query))
    y_one_hot = (y[..., None] == np.arange(num_classes)).astype(float)                  # cell 42 (In [22])
    loss = -np.mean((y_one_hot * predicted).sum(axis=-1).reshape(-1))                   # cell 56 (In [29])
    accuracy = np.mean(predicted.argmax(axis=-1) == y)                                  # cell 58 (In [30])
    return loss, accuracy


def paper_loss_and_accuracy(support_emb, query_emb, num_classes, num_support, num_query):
    """Snell et al. 2017, Eq. 1-2 and Algorithm 1: class means, log_softmax over classes of -||f(x) - c_k||^2."""
    D = support_emb.shape[-1]
    prototype = support_emb.reshape(num_classes, num_support, D).mean(axis=1)
    logp = log_softmax(-squared_distances(query_emb, prototype))                        # (N*Q, N): per query
    y = np.repeat(np.arange(num_classes), num_query)
    return -logp[np.arange(len(y)), y].mean(), np.mean(logp.argmax(axis=-1) == y)


# ---- notebook 3.1: "we apply softmax to this distance" -----------------------------------------------------
def test_3_1_softmax_of_the_distance_gives_the_farthest_prototype_the_highest_probability():
    """3.1, cell 11 (markdown) and Images/6.png ("Softmax (Distance)"): a softmax of the distances ranks the
    prototypes from far to near; Eq. 2 takes the softmax of the NEGATIVE (squared) distances."""
    protos = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])            # lion, elephant, dog
    query = np.array([[0.2, 0.1]])                                      # a lion: next to the first prototype
    d = squared_distances(query, protos)[0]
    book = np.exp(log_softmax(np.sqrt(d)))
    paper = np.exp(log_softmax(-d))
    assert d.argmin() == 0
    assert book.argmax() == d.argmax() == 2 and book[0] == book.min()   # the farthest class wins, the nearest loses
    assert paper.argmax() == 0 and paper[0] > 0.99


# ---- notebook 3.3: the distance is a mean over dimensions ------------------------------------------------------
def test_3_3_distance_is_the_squared_distance_divided_by_the_dimension():
    """3.3, cell 50 (In [26]): reduce_mean over the embedding's D = 64 dimensions divides the paper's squared
    distance by D (the original code sums: protonets/models/utils.py:14, .pow(2).sum(2)), so every logit is D times
    smaller: a softmax at temperature 64. On an embedding where each query is nearest its own prototype by a margin,
    the paper is confident and the notebook is nearly uniform."""
    rng = np.random.default_rng(0)
    D, N = 64, 5
    protos = rng.standard_normal((N, D))
    queries = protos + 0.3 * rng.standard_normal((N, D))               # query k near prototype k
    book, paper = book_euclidean_distance(queries, protos), squared_distances(queries, protos)
    np.testing.assert_allclose(book * D, paper, rtol=1e-12)
    p_book, p_paper = np.exp(log_softmax(-book)), np.exp(log_softmax(-paper))
    assert (p_paper.argmax(-1) == np.arange(N)).all() and (p_book.argmax(-1) == np.arange(N)).all()  # same ranking
    assert p_paper.diagonal().min() > 0.999                            # the paper: sure of the right class
    assert p_book.diagonal().max() < 0.9                               # the notebook: far softer (D = 64)


# ---- notebook 3.3: the softmax runs over the queries, and the targets are scrambled -------------------------------
def test_3_3_a_perfect_embedding_gets_a_large_loss_and_a_low_accuracy():
    """3.3, cells 52-58 (In [27]-[30]): distance = euclidean_distance(class_prototype, query_set_embeddings) has one
    ROW per prototype, so log_softmax(-distance) normalises over the queries; reshaped to (N, Q, -1) the target of
    prototype k is the queries N*j + k, mostly of other classes (the original passes the queries first,
    protonets/models/few_shot.py:48: euclidean_dist(zq, z_proto)). An embedding that puts every query exactly on its
    own class's prototype, which the paper's loss drives to 0 with accuracy 1, is a poor embedding for the notebook."""
    N, K, Q, D = 60, 5, 5, 64                                         # cell 33 (In [17]): 60-way 5-shot, 5 queries
    rng = np.random.default_rng(1)
    centres = 3.0 * rng.standard_normal((N, D))
    support = np.repeat(centres, K, axis=0)                            # class-major, as the notebook's reshape
    query = np.repeat(centres, Q, axis=0)
    paper_loss, paper_acc = paper_loss_and_accuracy(support, query, N, K, Q)
    book_loss, book_acc = book_loss_and_accuracy(support, query, N, K, Q)
    assert paper_loss < 1e-6 and paper_acc == 1.0
    assert book_loss > 1.0 and book_acc < 0.2
    # which queries the notebook pairs with prototype k: flat indices N*j + k, of class (N*j + k) // Q
    paired = np.array([[(N * j + k) // Q for j in range(Q)] for k in range(N)])
    assert (paired == np.arange(N)[:, None]).mean() < 0.1


def test_3_3_the_printed_loss_is_ln_300_a_softmax_over_the_300_queries():
    """3.3, cell 64's printed output: "Loss: 5.70378160477, Accuracy: 0.0166666675359" at episodes 10 and 20. With
    every embedding equal (cell 26 (In [13]) globs data/data/<alphabet>/<character>/*.png, a folder the book's
    repository does not have: its drawings are in data/images, so the dataset stays np.zeros (cell 24)), the
    notebook's loss is ln(N * Q) = ln 300 and its accuracy the argmax tie, class 0: 1/60. A softmax over the 60
    classes, the paper's, would give ln 60 = 4.09 for the same embedding: the printed number shows the axis."""
    N, K, Q, D = 60, 5, 5, 64
    same = np.zeros((N * K, D)), np.zeros((N * Q, D))
    book_loss, book_acc = book_loss_and_accuracy(*same, N, K, Q)
    paper_loss, _ = paper_loss_and_accuracy(*same, N, K, Q)
    printed_loss, printed_acc = 5.70378160477, 0.0166666675359
    assert book_loss == pytest.approx(math.log(N * Q)) and book_loss == pytest.approx(printed_loss, abs=1e-5)
    assert book_acc == pytest.approx(1 / N) and book_acc == pytest.approx(printed_acc, abs=1e-8)
    assert paper_loss == pytest.approx(math.log(N)) and abs(paper_loss - printed_loss) > 1.5


# ---- the chapter says what the tests above show -----------------------------------------------------------------
def test_chapter_3_states_each_erratum_with_its_cell():
    import json

    from conftest import REPO
    cells = json.loads((REPO / "chapters" / "03_prototypical_networks.ipynb").read_text())["cells"]
    text = " ".join("".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown").split())
    for citation in ("(3.1, cell 11, and its figure `Images/6.png`)", "(3.3, cell 50, `In [26]`)",
                     "(3.3, cells 52-58, `In [27]`-`In [30]`)", "(3.3, cell 26, `In [13]`"):
        assert citation in text, citation
    assert "Loss: 5.70378160477, Accuracy: 0.0166666675359" in text

"""Reference solution for chapter 1's exercise: sample an N-way K-shot task from a labelled data set."""
import numpy as np


def sample_task(labels, n_way, k_shot, n_query, rng):
    """Indices and task labels of an N-way K-shot task (see the chapter's stub for the contract)."""
    classes = rng.choice(np.unique(labels), size=n_way, replace=False)   # random classes, in random order
    s_idx, s_y, q_idx, q_y = [], [], [], []
    for task_label, c in enumerate(classes):                             # class c gets task label 0..N-1
        examples = rng.choice(np.flatnonzero(labels == c), size=k_shot + n_query, replace=False)
        s_idx.append(examples[:k_shot])
        q_idx.append(examples[k_shot:])                                  # disjoint from the support set
        s_y.append(np.full(k_shot, task_label))
        q_y.append(np.full(n_query, task_label))
    return np.concatenate(s_idx), np.concatenate(s_y), np.concatenate(q_idx), np.concatenate(q_y)

"""Reference solutions for chapter 1's exercises: an N-way K-shot task sampler (Exercise 1), a learned optimiser's unroll (Exercise 5)."""
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


def unroll(optimizer, params, problem, theta, state, steps):
    """``steps`` steps of a learned optimiser: (meta_loss, theta_T, state_T), meta_loss = sum_t mean_i f_i(theta_t)."""
    import tinymeta as tm

    meta_loss = 0.0
    for _ in range(steps):
        point = theta.detach().requires_grad_()                  # the optimisee's gradient: a constant
        gradient = tm.grad(problem.losses(point).sum(), point)
        update, state = optimizer(params, gradient, state)       # g_t and the LSTM's next state
        theta = theta + update                                   # theta_{t+1} = theta_t + g_t, still a function of params
        meta_loss = meta_loss + problem.losses(theta).mean()     # eq. 3 with w_t = 1
    return meta_loss, theta, state

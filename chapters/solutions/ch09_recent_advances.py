"""Reference solutions for chapter 9's exercises (9.1: NIL, Raghu et al. 2020, Sec. 5; 9.2: TAML, Jamal & Qi 2019;
9.4: MAML++'s multi-step loss weights, Antoniou et al. 2019, Sec. 4)."""
import numpy as np


def nil_classify(fs, ys, fq, n_way):
    """Scores (T, Q, n_way): mean cosine similarity of each query to each class's support features; and argmax."""
    fs_unit = fs / np.linalg.norm(fs, axis=-1, keepdims=True)
    fq_unit = fq / np.linalg.norm(fq, axis=-1, keepdims=True)
    sim = fq_unit @ np.swapaxes(fs_unit, 1, 2)            # (T, Q, S) cosine similarities
    onehot = np.eye(n_way)[ys]                            # (T, S, C)
    scores = sim @ onehot / onehot.sum(axis=1, keepdims=True)
    return scores, scores.argmax(axis=-1)


def taml_regularisers(logits_before, logits_after, losses_before):
    """Section 9.2 (TAML, Jamal & Qi 2019): (mean_i [H_i(adapted) - H_i(initial)], Theil index of the losses)."""
    def entropy(logits):                                   # (T, N, C) -> (T,): mean over examples of -sum p ln p
        z = logits - logits.max(axis=-1, keepdims=True)    # stable: log_softmax = z - log sum exp z
        log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        return -(np.exp(log_p) * log_p).sum(axis=-1).mean(axis=-1)

    entropy_term = (entropy(logits_after) - entropy(logits_before)).mean()
    r = losses_before / losses_before.mean()               # each task's share of the mean loss
    theil_index = (r * np.log(r)).mean()
    return entropy_term, theil_index


def msl_weights(steps, epoch, msl_epochs):
    """Section 9.4 (MAML++): the weights of the query losses after inner steps 0..S-1 at ``epoch``."""
    if epoch >= msl_epochs:                                # the multi-step loss is over: the last step alone
        return np.eye(steps)[-1]
    decay, floor = 1.0 / (steps * msl_epochs), 0.03 / steps
    weights = np.full(steps, max(1.0 / steps - epoch * decay, floor))
    weights[-1] = min(1.0 / steps + epoch * (steps - 1) * decay, 1.0 - (steps - 1) * floor)
    return weights

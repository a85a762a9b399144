"""Reference solution for chapter 8's exercise (gradient agreement, Eshratifar et al. 2018)."""
import numpy as np


def agreement_weights(G):
    """w_i = sum_j g_i . g_j / sum_k |sum_j g_k . g_j| for the task updates G (T, P)."""
    agreement = (G @ G.T).sum(axis=1)          # every task's inner products with all tasks, summed
    return agreement / np.abs(agreement).sum()

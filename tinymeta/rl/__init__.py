"""Reinforcement learning: MAML's 2D navigation with a Gaussian MLP policy, MAML / Meta-SGD with TRPO.

navigation.py  the point environment on the host (T tasks x N trajectories x horizon)
baseline.py    rllab's linear feature baseline, fitted per task
policy.py      Gaussian MLP policy over a parameter dict; log-likelihood and KL
trpo.py        conjugate gradient, exact Hessian-vector products of the KL, line search
maml_rl.py     the inner policy-gradient step and the meta-objective on the task axis
(runs through ``python -m tinymeta train --preset nav2d-maml``: tinymeta/experiment/rl.py trains, checkpoints,
evaluates and plots with the other presets' run folder)
"""

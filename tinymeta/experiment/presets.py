"""The presets: the papers' protocols, one published table cell each.

Each preset is one cell of a published table (see the results page and the papers
cited in each algorithm's module). ``tinymeta presets`` lists them; flags override
any field.
"""
from __future__ import annotations

from .config import Config
from .rl import PAPER_RETURNS, RL_PRESETS  # the nav2d-* presets live beside their loop


def _sine(algorithm, shots):
    base = Config(algorithm=algorithm, dataset="sine", shots=shots, queries=10, meta_batch=25,
                  inner_lr=0.01, inner_steps=1, eval_inner_steps=10, meta_lr=1e-3, iterations=70000,
                  val_interval=1000, val_tasks=100, log_interval=100)
    if algorithm == "fomaml":
        base = base.replace(first_order=True)
    if algorithm == "meta-sgd":  # its rates are learned for one step (the paper evaluates one step)
        base = base.replace(eval_inner_steps=1)
    if algorithm == "reptile":  # Reptile's sine demo: one epoch of SGD (lr 0.02) over 50 points in batches of 10
        base = base.replace(inner_optimizer="sgd", inner_lr=0.02, inner_steps=5, inner_batch=10, train_shots=50,
                            meta_optimizer="sgd", meta_lr=0.1, lr_schedule="linear", iterations=30000)
    return base


# Original code the Omniglot presets follow, at the commits read (file:line citations below).
MAML_CODE = "cbfinn/maml@a7f45f1"
REPTILE_CODE = "openai/supervised-reptile@8f2b71c"

MAML_OMNIGLOT_SOURCES = {
    "queries": "main.py:249 DataGenerator(update_batch_size*2): K support + K query per class, train and test",
    "meta_batch": "main.py:7-11 usage (32 for 5-way, 16 for 20-way); paper App. A.1",
    "inner_lr": "main.py:7-11 usage, --update_lr 0.4 (5-way) / 0.1 (20-way)",
    "inner_steps": "main.py:7-11 usage, --num_updates 1 (5-way) / 5 (20-way)",
    "eval_inner_steps": "main.py:230 test_num_updates = 10",
    "meta_lr": "main.py:50 meta_lr 0.001, maml.py:145 Adam",
    "iterations": "main.py:7-11 usage, --metatrain_iterations 60000",
    "task_loss": "utils.py:58 xent = softmax CE / update_batch_size per example; maml.py:90 tf.gradients of that "
                 "vector sums it; maml.py:136 meta-loss reduce_sum / meta_batch_size",
    "adapt_norm": "maml.py:94 the inner step updates `weights` only; batch norm's variables (utils.py:41) live "
                  "outside them: meta-learned, not adapted",
    "bn_scale": "utils.py:41 tf.contrib.layers.batch_norm defaults: center=True, scale=False",
    "bn_eps": "utils.py:41 tf.contrib.layers.batch_norm default epsilon 0.001",
    "conv_padding": "utils.py:33 tf.nn.conv2d(..., stride 2, 'SAME')",
    "features": "maml.py:223 reduce_mean over the spatial axes",
    "head_init": "maml.py:206 w5 ~ tf.random_normal (N(0, 1)); maml.py:189 conv Glorot-uniform",
    "split_mode": "data_generator.py:46-54 random.seed(1) shuffle: 1100 train, 100 val, 423 test",
    "rotations": "data_generator.py:138,147 a rotation per class per task, at meta-test too",
    "ink": "data_generator.py:118 image = 1.0 - image (strokes 1)",
    "test_tasks": "main.py:163 NUM_TEST_POINTS = 600; 95% CI = 1.96 std / sqrt(600)",
}

REPTILE_OMNIGLOT_SOURCES = {
    "command": "README.md 'Reproducing training runs': run_omniglot.py flags of each cell",
    "inner_optimizer": "models.py:10 tf.train.AdamOptimizer(beta1=0)",
    "inner_lr": "README --learning-rate 0.001 (5-way) / 0.0005 (20-way)",
    "inner_steps": "README --inner-iters 5 (5-way) / 10 (20-way)",
    "inner_batch": "README --inner-batch 10 (5-way) / 20 (20-way); reptile.py:223-248 without replacement",
    "train_shots": "README --train-shots 10",
    "meta_batch": "README --meta-batch 5",
    "meta_lr": "README --meta-step 1 --meta-step-final 0; train.py:54-55 linear in i / meta_iters",
    "iterations": "README --meta-iters 100000 (5-way) / 200000 (20-way)",
    "eval_inner_steps": "README --eval-iters 50",
    "queries": "reptile.py:112-113 an evaluation task holds out one example per class",
    "task_loss": "models.py:27 per-example sparse CE; minimize() of the vector sums it over the mini-batch",
    "conv_padding": "models.py:21 conv2d(64, 3, strides=2, padding='same')",
    "bn_eps": "models.py:22 tf.layers.batch_normalization(training=True): scale and shift, epsilon 0.001",
    "features": "models.py:24 flatten (2x2x64 = 256 features)",
    "head_init": "models.py:25 tf.layers.dense: Glorot-uniform kernel, zero bias",
    "test_tasks": "args.py:35 --eval-samples 10000",
    "inner_state": "reptile.py:62-72 only the trainable variables are saved and restored around a task: Adam's "
                   "second moment and step count carry on, tasks run one after another; reptile.py:114,122 "
                   "evaluation starts from the training state and restores the full state after each task",
    "eval_inner_batch": "README --eval-batch 5 (5-way) / 10 (20-way); reptile.py:115 _mini_batches at evaluation",
    "transductive": "README --transductive; reptile.py:126-128 a task's test inputs through the net together",
    "rotations": "omniglot.py:51-63 augment_dataset: 0/90/180/270 as extra classes; run_omniglot.py:24-26 "
                 "only the training characters are augmented",
    "ink": "omniglot.py:94 Image.open(...).resize((28, 28)) as read: background 1, strokes 0",
    "split_mode": "omniglot.py:28-35 sorted alphabets then characters; run_omniglot.py:22 random.seed(0); "
                  "omniglot.py:47-49 random.shuffle, first 1200 train, 423 test (no validation split)",
}


def _omniglot(algorithm, ways, shots):
    """An Omniglot cell under its original code's protocol (MAML's, or Reptile's for Reptile)."""
    five = ways == 5
    base = Config(algorithm=algorithm, dataset="omniglot", ways=ways, shots=shots, queries=shots,
                  meta_batch=32 if five else 16, inner_lr=0.4 if five else 0.1,
                  inner_steps=1 if five else 5, eval_inner_steps=10, meta_lr=1e-3, iterations=60000,
                  filters=64, val_interval=1000, val_tasks=100, log_interval=100,
                  task_loss="sum/shots", adapt_norm=False, bn_scale=False, bn_eps=1e-3, conv_padding="same",
                  features="mean", head_init="normal", split_mode="maml", rotations="per-task", ink=1,
                  test_tasks=600)
    if algorithm == "fomaml":
        base = base.replace(first_order=True)
    if algorithm == "meta-sgd":  # its rates are learned for the one step it evaluates with
        base = base.replace(eval_inner_steps=1)
    if algorithm == "reptile":
        base = base.replace(inner_optimizer="adam", inner_lr=1e-3 if five else 5e-4,
                            inner_steps=5 if five else 10, inner_batch=10 if five else 20, train_shots=10,
                            queries=1, meta_batch=5, meta_optimizer="sgd", meta_lr=1.0, lr_schedule="linear",
                            iterations=100000 if five else 200000, eval_inner_steps=50, task_loss="sum",
                            adapt_norm=True, bn_scale=True, bn_eps=1e-3, features="flatten", head_init="glorot",
                            test_tasks=10000, inner_state="persistent", eval_inner_batch=5 if five else 10,
                            transductive=True, rotations="train-classes", ink=0, split_mode="reptile")
    return base


RELATIONNET_CODE = "floodsung/LearningToCompare_FSL@b74e636"

# one_shot.py = omniglot/omniglot_train_one_shot.py, few_shot.py = omniglot/omniglot_train_few_shot.py,
# test_one_shot.py = omniglot/omniglot_test_one_shot.py (test_few_shot.py alike)
RELATIONNET_OMNIGLOT_SOURCES = {
    "command": "README.md:23, 29, 35, 41: one_shot.py -w 5 -s 1 -b 19; few_shot.py -w 5 -s 5 -b 15; "
               "one_shot.py -w 20 -s 1 -b 10; few_shot.py -w 20 -s 5 -b 5",
    "queries": "README.md:23-41 -b (batch_num_per_class) 19, 15, 10, 5 per class while training "
               "(one_shot.py:26, few_shot.py:26 defaults 19, 15); the test uses K per class "
               "(test_one_shot.py:165): tinymeta evaluates with the training count (one `queries` field)",
    "meta_batch": "one_shot.py:162 one task per episode",
    "meta_lr": "one_shot.py:29 learning_rate 0.001, one_shot.py:136, 138 Adam for each module; "
               "one_shot.py:137, 139 StepLR(step_size=100000, gamma=0.5) is not followed (constant)",
    "iterations": "one_shot.py:27 episode 1000000",
    "filters": "one_shot.py:22 feature_dim 64; one_shot.py:52-67 Conv2d(.., 64, 3)",
    "algorithm": "one_shot.py:47-101 CNNEncoder (padding 0 + pool, padding 0 + pool, padding 1, padding 1) "
                 "and RelationNetwork (2 x conv 64 + pool, fc 64-8 ReLU, fc 8-1 sigmoid, relation_dim 8 at "
                 "one_shot.py:23); one_shot.py:103-116 weights_init; one_shot.py:185-187 MSE to one-hot; "
                 "one_shot.py:197-198 clip_grad_norm 0.5 per module; few_shot.py:173-174 class maps summed "
                 "over the shots",
    "bn_eps": "one_shot.py:53 nn.BatchNorm2d(64, momentum=1, affine=True): eps 1e-5, scale and shift; "
              "the code never calls .eval(): batch statistics at test too",
    "transductive": "one_shot.py:172-173 the support set and the query set through the encoder in two passes, "
                    "each with its own batch statistics; one_shot.py:183 every pair through the relation "
                    "module in one",
    "split_mode": "task_generator.py:30-39 every character of the resized folder, random.seed(1) shuffle, "
                  "first 1200 train, the other 423 test (no validation); os.listdir order there, sorted here",
    "rotations": "one_shot.py:161, 213 degrees = random.choice([0, 90, 180, 270]) once per episode, for every "
                 "class of the task, at test too (task_generator.py:20-25, 143 Rotate)",
    "ink": "task_generator.py:103 image.convert('L'): background 1, strokes 0; task_generator.py:141 "
           "Normalize(0.92206, 0.08426) is not followed: an affine map of the input, which the first batch "
           "norm undoes (its conv has no padding)",
    "val_interval": "one_shot.py:206 a test every 5000 episodes (the original keeps the model with the best "
                    "test accuracy, one_shot.py:245-253; tinymeta selects nothing on test tasks)",
    "val_tasks": "one_shot.py:28 test_episode 1000",
    "test_tasks": "test_one_shot.py:29-30, 156-197: 10 rounds of 1000 episodes, the mean of the rounds' mean "
                  "accuracies (each episode's accuracy over its N*K queries, test_one_shot.py:191): 10000 "
                  "episodes of equal size",
    "log_interval": "one_shot.py:203 a loss line every 100 episodes",
}


def _relationnet(ways, shots):
    """A relation networks Omniglot cell under LearningToCompare_FSL's protocol (RELATIONNET_OMNIGLOT_SOURCES)."""
    queries = {(5, 1): 19, (5, 5): 15, (20, 1): 10, (20, 5): 5}[(ways, shots)]
    return Config(algorithm="relationnet", dataset="omniglot", ways=ways, shots=shots, queries=queries,
                  meta_batch=1, meta_optimizer="adam", meta_lr=1e-3, iterations=1_000_000, filters=64,
                  bn_eps=1e-5, transductive=True, split_mode="relationnet", rotations="whole-task", ink=0,
                  val_interval=5000, val_tasks=1000, test_tasks=10000, log_interval=100)


# Original code of the Omniglot presets of algorithms that are not MAML's: (code, sources of each setting)
ORIGINAL_CODE = {"relationnet": (RELATIONNET_CODE, RELATIONNET_OMNIGLOT_SOURCES)}

# The papers' numbers for each Omniglot cell (REFERENCE.md), by algorithm and (ways, shots).
PAPERS = {
    "maml": ("Finn et al. 2017, arXiv:1703.03400, Table 1 (MAML)",
             {(5, 1): "98.7 +- 0.4", (5, 5): "99.9 +- 0.1", (20, 1): "95.8 +- 0.3", (20, 5): "98.9 +- 0.2"}),
    "fomaml": ("Finn et al. 2017, arXiv:1703.03400, Table 1 (MAML, first order approx.)",
               {(5, 1): "98.3 +- 0.5", (5, 5): "99.2 +- 0.2", (20, 1): "89.4 +- 0.5", (20, 5): "97.9 +- 0.1"}),
    "meta-sgd": ("Li et al. 2017, arXiv:1707.09835, Omniglot table",
                 {(5, 1): "99.53 +- 0.26", (5, 5): "99.93 +- 0.09", (20, 1): "~95.9", (20, 5): "~99.0"}),
    "reptile": ("Nichol et al. 2018, arXiv:1803.02999, Table 1 (Omniglot, Reptile + transduction)",
                {(5, 1): "97.68 +- 0.04", (5, 5): "99.48 +- 0.06", (20, 1): "89.43 +- 0.14", (20, 5): "97.12 +- 0.32"}),
    "anil": ("Raghu et al. 2019, arXiv:1909.09157, Table 2 (ANIL)", {(20, 1): "96.2 +- 0.5", (20, 5): "98.0 +- 0.3"}),
    "nil": ("Raghu et al. 2019, arXiv:1909.09157, Table 4 (NIL)", {(20, 1): "96.7 +- 0.3", (20, 5): "98.0 +- 0.04"}),
    "gradient-agreement": ("Eshratifar et al. 2018, arXiv:1810.08178", {}),
    "adml": ("Yin et al. 2018, arXiv:1806.03316 (no Omniglot cell: MAML's Omniglot protocol with FGSM)", {}),
    "relationnet": ("Sung et al. 2018, arXiv:1711.06025, Table 1 (Relation Net)",
                    {(5, 1): "99.6 +- 0.2", (5, 5): "99.8 +- 0.1", (20, 1): "97.6 +- 0.2", (20, 5): "99.1 +- 0.1"}),
}


def preset_source(name: str) -> dict:
    """Where a preset comes from: paper and cell, the paper's number, the original code and each setting's line.

    ``{"paper", "cell", "paper_value", "code", "settings": {field: "file:line what"}}``;
    ``settings`` is empty for presets that follow no original code line by line.
    """
    if name in RL_PRESETS:
        return rl_preset_source(name)
    cfg = PRESETS[name]
    if cfg.dataset != "omniglot":
        return {"paper": None, "cell": None, "paper_value": None, "code": None, "settings": {}}
    paper, values = PAPERS[cfg.algorithm]
    reptile = cfg.algorithm == "reptile"
    code, settings = ORIGINAL_CODE.get(cfg.algorithm, (REPTILE_CODE, REPTILE_OMNIGLOT_SOURCES) if reptile
                                       else (MAML_CODE, MAML_OMNIGLOT_SOURCES))
    return {"paper": paper, "cell": f"Omniglot {cfg.ways}-way {cfg.shots}-shot",
            "paper_value": values.get((cfg.ways, cfg.shots)), "code": code, "settings": dict(settings)}


def _miniimagenet(algorithm, shots):
    base = Config(algorithm=algorithm, dataset="miniimagenet", ways=5, shots=shots, queries=15,
                  meta_batch=4 if shots == 1 else 2, inner_lr=0.01, inner_steps=5, eval_inner_steps=10,
                  meta_lr=1e-3, iterations=60000, filters=32, pool=True, val_interval=1000, val_tasks=100)
    if algorithm == "fomaml":
        base = base.replace(first_order=True)
    return base


def _caml_sine(shots, context=5):
    """CAVIA's sine protocol (lmzintgraf/cavia, regression/arguments.py; line numbers at that repository's HEAD).

    iterations 50000 (arguments.py:11), 25 tasks per meta-update (:13), 10 query points while
    meta-training (k_meta_test, :16), inner lr 1.0 (:19), meta lr 0.001 with Adam (:20; cavia.py:59),
    1 inner step (:22), 5 context parameters (:24), hidden layers 40, 40 (:25), second order
    (first_order False, :27; cavia.py:99 create_graph=not first_order). K support points for the
    table's K-shot column (k_meta_train / k_shot_eval, :15, :17; the code's default is 10).
    """
    return Config(algorithm="caml", dataset="sine", shots=shots, queries=10, meta_batch=25, inner_lr=1.0,
                  inner_steps=1, eval_inner_steps=10, meta_lr=1e-3, iterations=50000, hidden=(40, 40),
                  context_size=context, val_interval=1000, val_tasks=100, log_interval=100)


def _build_presets():
    presets = {}
    for algo in ("maml", "fomaml", "meta-sgd", "reptile", "anil", "gradient-agreement"):
        for k in (5, 10, 20):
            presets[f"{algo}-sine-{k}shot"] = _sine(algo, k)
    for k in (5, 10, 20):  # MAML's baseline: one net trained on all tasks jointly, fine-tuned at test time
        presets[f"pretrained-sine-{k}shot"] = _sine("maml", k).replace(inner_steps=0)
    for algo in ("maml", "fomaml", "meta-sgd", "reptile", "anil", "nil", "gradient-agreement"):
        for ways in (5, 20):
            for shots in (1, 5):
                presets[f"{algo}-omniglot-{ways}w{shots}s"] = _omniglot(algo, ways, shots)
    for ways in (5, 20):
        for shots in (1, 5):
            presets[f"relationnet-omniglot-{ways}w{shots}s"] = _relationnet(ways, shots)
    for algo in ("maml", "fomaml"):
        for shots in (1, 5):
            presets[f"{algo}-miniimagenet-5w{shots}s"] = _miniimagenet(algo, shots)
    # CAML (CAVIA) on sine: 5 context parameters (the code's default), and the other context sizes of the
    # paper's sine table (2 and 50: unconfirmed against the paper's PDF)
    for k in (5, 10, 20):
        presets[f"caml-sine-{k}shot"] = _caml_sine(k)
        for context in (2, 50):
            presets[f"caml-sine-{k}shot-context{context}"] = _caml_sine(k, context)
    # ADML on Omniglot: MAML's protocol for the cell (whatever MAML's preset is), plus the FGSM epsilon.
    # epsilon 0.2 on images in [0, 1], as the book's ADML notebook; the paper's values and pixel scale are
    # unconfirmed (its text could not be read here), and its experiments are on MiniImageNet and CIFAR-100.
    for ways in (5, 20):
        for shots in (1, 5):
            presets[f"adml-omniglot-{ways}w{shots}s"] = presets[f"maml-omniglot-{ways}w{shots}s"].replace(
                algorithm="adml", adv_epsilon=0.2)
    return presets


PRESETS: dict[str, Config] = _build_presets()


def default_config(algorithm: str, dataset: str, ways: int | None, shots: int | None) -> Config:
    """The protocol that best matches what was asked for without --preset.

    The nearest table cell for this algorithm (MAML's, with the algorithm
    swapped in, where the papers have no such cell).
    """
    if dataset == "sine":
        cell = f"sine-{shots if shots in (5, 10, 20) else 10}shot"
    elif dataset == "miniimagenet":
        cell = f"miniimagenet-5w{5 if shots == 5 else 1}s"
    else:
        cell = f"omniglot-{20 if ways == 20 else 5}w{5 if shots == 5 else 1}s"
    preset = PRESETS.get(f"{algorithm}-{cell}")
    return preset if preset is not None else PRESETS[f"maml-{cell}"].replace(algorithm=algorithm)


# ---- 2D navigation (reinforcement learning, MAML paper Sec. 5.3) -------------------------------
RL_CODE = "cbfinn/maml_rl@725c800"
RL_SOURCES = {
    "fast_lr": "maml_examples/maml_trpo_point.py:17 fast_learning_rates = [0.5]",
    "fast_batch": "maml_examples/maml_trpo_point.py:19 fast_batch_size 20 trajectories per task",
    "meta_batch": "maml_examples/maml_trpo_point.py:20 meta_batch_size 40 (the paper's Fig. 4 policy: 20, "
                  "test_maml_point.py:21)",
    "horizon": "maml_examples/maml_trpo_point.py:21 max_path_length 100",
    "inner_steps": "maml_examples/maml_trpo_point.py:22 num_grad_updates 1",
    "max_kl": "maml_examples/maml_trpo_point.py:23 meta_step_size = 0.01, TRPO's step_size (its KL bound)",
    "hidden": "maml_examples/maml_trpo_point.py:38 hidden_sizes=(100,100), ReLU (line 37)",
    "iterations": "maml_examples/maml_trpo_point.py:54 n_itr=100",
    "seed": "maml_examples/maml_trpo_point.py:64 seed=1",
    "eval_tasks": "maml_examples/test_maml_point.py:26 40 goals",
    "eval_seed": "maml_examples/test_maml_point.py:27 np.random.seed(1)",
    "eval_trajectories": "maml_examples/test_maml_point.py:72 batch_size 4000 = 40 trajectories of horizon 100",
    "eval_steps": "icml/make_point_plots.py:18 steps 0-3",
}
_RL_ROWS = {"nav2d-maml": "meta-learned", "nav2d-pretrained": "pretrained"}


def rl_preset_source(name: str) -> dict:
    """:func:`preset_source` of a 2D-navigation preset: the MAML paper's Fig. 4 and cbfinn/maml_rl's lines."""
    if name == "nav2d-smoke":
        return {"paper": None, "cell": None, "paper_value": None, "code": None, "settings": {}}
    row = _RL_ROWS.get(name)
    if row is None:  # Meta-SGD: MAML's 2D-navigation protocol, Meta-SGD's learned rates (no paper cell here)
        paper = ("Li et al. 2017, arXiv:1707.09835 (Meta-SGD), trained under the MAML paper's 2D-navigation "
                 "protocol (Finn et al. 2017, arXiv:1703.03400, Sec. 5.3)")
        value = None
    else:
        paper = "Finn et al. 2017, arXiv:1703.03400, Fig. 4 (left), 2D navigation"
        value = "average return after 0-3 steps: " + ", ".join(f"{v:g}" for v in PAPER_RETURNS[row])
    return {"paper": paper, "cell": f"2D navigation, {RL_PRESETS[name].algorithm}", "paper_value": value,
            "code": RL_CODE, "settings": dict(RL_SOURCES)}


ALL_PRESET_NAMES = [*PRESETS, *RL_PRESETS]  # every preset `tinymeta train --preset` takes

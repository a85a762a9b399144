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


MAMLPP_CODE = "AntreasAntoniou/HowToTrainYourMAMLPytorch@8696470"
# json = experiment_config/omniglot_maml++-omniglot_{shots}_8_0.1_64_{ways}_0.json (the four cells' files differ
# only in lines 50-51); the paper's runs: experiment_scripts/<same name>_few_shot.sh:11.
MAMLPP_OMNIGLOT_SOURCES = {
    "command": "experiment_scripts/omniglot_maml++-omniglot_{shots}_8_0.1_64_{ways}_0_few_shot.sh:11 "
               "train_maml_system.py --name_of_args_json_file experiment_config/omniglot_maml++-omniglot_"
               "{shots}_8_0.1_64_{ways}_0.json (json below)",
    "ways": "json:50 num_classes_per_set",
    "shots": "json:51 num_samples_per_class",
    "queries": "json:52 num_target_samples 1 (one query per class, 1-shot and 5-shot alike)",
    "meta_batch": "json:2 batch_size 8",
    "inner_lr": "parser_utils.py:41 --task_learning_rate 0.1, read at few_shot_learning_system.py:46-49 (the json's "
                "init_inner_loop_learning_rate, json:19, is read nowhere; it is 0.1 too)",
    "inner_steps": "json:47 number_of_training_steps_per_iter 5",
    "eval_inner_steps": "json:48 number_of_evaluation_steps_per_iter 5",
    "meta_lr": "json:40 meta_learning_rate 0.001; few_shot_learning_system.py:69 Adam (amsgrad False)",
    "lr_schedule": "few_shot_learning_system.py:70-71 CosineAnnealingLR(T_max=total_epochs, eta_min=min_learning_rate), "
                   ":346 stepped with the epoch before each iteration",
    "meta_lr_min": "json:39 min_learning_rate 0.00001",
    "iterations": "json:27-28 total_epochs 100 x total_iter_per_epoch 500 = 50,000",
    "epoch_iterations": "json:28 total_iter_per_epoch 500; experiment_builder.py:321-322 epoch = current_iter / 500, "
                        "few_shot_learning_system.py:345 int(epoch)",
    "multi_step_loss_iterations": "json:21 multi_step_loss_num_epochs 10 (x 500 = 5,000), json:55 "
                                  "use_multi_step_loss_optimization; few_shot_learning_system.py:83-103 the weights, "
                                  ":232-244 weighted query loss after every step while epoch < 10, else the last",
    "first_order_iterations": "json:41 first_order_to_second_order_epoch -1: (-1 + 1) x 500 = 0 first-order "
                              "iterations; few_shot_learning_system.py:304-305 second order when epoch > -1; json:54",
    "learned_step_rates": "json:24 learnable_per_layer_per_step_inner_loop_learning_rate; inner_loop_optimizers.py:86-91 "
                          "a rate per weight tensor and step, initialised to the inner lr, :108-113 the step",
    "per_step_bn": "json:31 per_step_bn_statistics, json:34-35 learnable gamma and beta; "
                   "meta_neural_network_architectures.py:177-185 weight and bias (steps, channels), :226-234 row "
                   "num_step; few_shot_learning_system.py:217-243 support and query of step s use row s",
    "adapt_norm": "json:25 enable_inner_loop_optimizable_bn_params false; few_shot_learning_system.py:111-120 the "
                  "inner loop adapts every weight but batch norm's",
    "pool": "json:30 max_pooling; meta_neural_network_architectures.py:568-573 stride 1, :651-652 2x2 max-pool",
    "filters": "json:44 cnn_num_filters 64, json:45 num_stages 4",
    "conv_padding": "json:46 conv_padding true -> padding=1 (meta_neural_network_architectures.py:57, 596)",
    "features": "meta_neural_network_architectures.py:654-657 no average pool with max-pooling: flatten (1x1x64)",
    "head_init": "meta_neural_network_architectures.py:115-116 xavier_uniform head, :62-66 xavier_uniform convs, "
                 "zero biases",
    "bn_scale": "json:34 learnable_bn_gamma true (and json:35 beta)",
    "bn_eps": "meta_neural_network_architectures.py:144 eps=1e-5",
    "task_loss": "few_shot_learning_system.py:284 F.cross_entropy: the mean over a task's examples (inner and "
                 "query); :250 summed over steps, :164 mean over tasks",
    "transductive": "few_shot_learning_system.py:233-236 a task's query set through the net together; "
                    "meta_neural_network_architectures.py:246 batch statistics always (training=True)",
    "ink": "data.py:383-387 the 1-bit PNGs as read (PIL resizes mode '1' by nearest neighbour): background 1, "
           "strokes 0, no inversion",
    "rotations": "data.py:489, 94 a rotation per class per task while training (experiment_builder.py:60, 316); "
                 "test tasks unrotated (:269 augment_images=False)",
    "activation": "meta_neural_network_architectures.py:426 F.leaky_relu (PyTorch's slope 0.01) after batch norm",
    "split_mode": "json:14 train_val_test_split, data.py:201-207: 1150 train, 50 validation, 423 test characters",
    "test_tasks": "json:23 num_evaluation_tasks 600 (experiment_builder.py:266-290: an ensemble of the 5 best "
                  "validation epochs' models)",
    "seed": "json:13 train_seed: three runs a cell, experiment_scripts/omniglot_maml++-omniglot_{shots}_8_0.1_64_"
            "{ways}_{{0,1,2}}_few_shot.sh:11 with train_seed 0, 1, 2 (val_seed 0); the paper reports the mean and "
            "standard deviation over the 3 seeds (the author, HowToTrainYourMAMLPytorch issue #20); tinymeta "
            "trains one (seed 0), so its 95% interval over test tasks is not the paper's +-",
}

# Koch, Zemel & Salakhutdinov 2015 has no released code: each setting cites the paper's section.
KOCH_PAPER = ("Koch, Zemel & Salakhutdinov 2015, 'Siamese neural networks for one-shot image recognition', "
              "ICML deep learning workshop, Table 2 (convolutional Siamese net, 20-way one-shot)")
SIAMESE_OMNIGLOT_SOURCES = {
    "siamese_loss": "Sec. 3.1 p = sigmoid(sum_j alpha_j |h1_j - h2_j|); Sec. 3.2 cross-entropy of same (1) / "
                    "different (0) pairs, minimised here without the L2 term (lambda_j not reported)",
    "split_mode": "Sec. 4.1-4.2: 30 background alphabets train, 10 evaluation alphabets validate, the other 10 "
                  "test (which 10 is not listed: a seeded draw here; drawers not split)",
    "ways": "Sec. 4.3: 20-way within-alphabet one-shot classification (Lake et al.'s task)",
    "shots": "Sec. 4.3: one drawing of each of the 20 characters",
    "queries": "Sec. 4.3: each of the 20 characters drawn once more as a test image: 20 trials per task",
    "test_tasks": "Sec. 4.3: 2 tasks per test alphabet x 10 alphabets x 20 trials = 400 one-shot trials",
    "val_tasks": "Sec. 4.2: one-shot validation error on 320 trials (16 tasks of 20) of the validation alphabets",
    "transductive": "Sec. 3.1: each image through the twin alone (no batch norm in the paper): here each test image "
                    "with its support set (batch norm sees 21 images)",
    "meta_batch": "Sec. 3.2: minibatches of 128 pairs, half same; here 4 episodes: 80 same and 1520 different "
                  "(query, class) pairs, each kind weighing half",
    "meta_lr": "Sec. 3.2: per-layer SGD with momentum, decayed 1% per epoch; here Adam 1e-3 (a deviation)",
    "iterations": "Sec. 4.2: up to 200 epochs with early stopping on validation; here a fixed CPU budget",
    "pool": "Sec. 3.1: each conv followed by ReLU and 2x2 max-pooling (the last conv without); here the few-shot "
            "conv body on 28x28 (3x3 convs, batch norm): a deviation, Koch's 105x105 net is not built",
    "rotations": "Sec. 3.2 'Affine distortions' are not used; no rotations either",
}
BOOK_CONTRASTIVE = ("Hands-On Meta Learning with Python (Ravichandiran 2018), ch. 2, notebook 2.4: contrastive loss "
                    "(Hadsell, Chopra & LeCun 2006, Eq. 4) on the Euclidean distance; the book reports no Omniglot "
                    "number")
KOCH_CODE = "none released by the authors: each setting cites the paper's section"
BOOK_CODE = ("sudharsan13296/Hands-On-Meta-Learning-With-Python@86c42ce, '02. Face and Audio Recognition using "
             "Siamese Networks/2.4 Face Recognition Using Siamese Network.ipynb'")
SIAMESE_CONTRASTIVE_SOURCES = {
    "siamese_loss": "notebook 2.4 contrastive_loss: y D^2 + (1 - y) max(margin - D, 0)^2, y = 1 genuine; Hadsell et al. "
                    "2006 Eq. 4 with Y = 1 - y and the 1/2 factors",
    "margin": "notebook 2.4 contrastive_loss: margin = 1",
}


def _siamese(loss):
    """Koch et al.'s 20-way one-shot Omniglot cell (``loss='bce'``), or the same cell with the book's contrastive loss."""
    return Config(algorithm="siamese", dataset="omniglot", ways=20, shots=1, queries=1, meta_batch=4,
                  inner_lr=0.0, inner_steps=0, eval_inner_steps=0, meta_lr=1e-3, iterations=20000, filters=64,
                  pool=True, features="flatten", split_mode="koch", rotations="none", ink=1, val_interval=500,
                  val_tasks=16, test_tasks=20, log_interval=100, transductive=False, siamese_loss=loss)
# Prototypical networks' code; line numbers at that commit. Its own split files are Vinyals et al.'s.
PROTONET_CODE = "jakesnell/prototypical-networks@c9bb4d2"

VINYALS_SOURCES = {
    "split_mode": "data/omniglot/splits/vinyals/{train,val,test,trainval}.txt (run_train.py:11 --data.split "
                  "vinyals): 1028 train + 172 val characters, 423 test, by alphabet; the final model is "
                  "retrained on trainval (README.md:34, scripts/train/few_shot/trainval.py:22-26)",
    "rotations": "protonets/data/omniglot.py:40,50 the class name's rot000..rot270 turns every image "
                 "(Image.rotate) before the resize; the split files list all four rotations of every character of "
                 "every split: 4800 training and 1692 test classes",
    "ink": "protonets/data/omniglot.py:27 1.0 - image: strokes 1, background 0",
    "queries": "scripts/train/few_shot/run_train.py:24 --data.test_query 15 (evaluation and validation)",
    "train_queries": "scripts/train/few_shot/run_train.py:18 --data.query 5; paper Sec. 3.1 '5 query points "
                     "per class'",
    "train_ways": "scripts/train/few_shot/run_train.py:14 --data.way 60; paper Sec. 3.1 'training episodes "
                  "containing 60 classes'",
    "shots": "scripts/train/few_shot/run_train.py:16 --data.shot (1 or 5: the paper matches training and test "
             "shots); run_train.py:22 --data.test_shot 0 = the training shot",
    "ways": "scripts/train/few_shot/run_train.py:20 --data.test_way (5; 20 for the 20-way cells, "
            "scripts/predict/few_shot/run_eval.py:11)",
    "meta_batch": "protonets/data/base.py:28-39 EpisodicBatchSampler: one episode per optimizer step",
    "meta_lr": "scripts/train/few_shot/run_train.py:48-51 Adam, learning rate 0.001",
    "lr_schedule": "scripts/train/few_shot/train.py:63,70 StepLR(decay_every, gamma=0.5) stepped once per epoch; "
                   "run_train.py:52 --train.decay_every 20 epochs x run_train.py:26 100 episodes = halved every "
                   "2000 episodes (paper Sec. 3.1)",
    "iterations": "scripts/train/few_shot/train.py:98-114 early stopping on validation loss (patience 200 "
                  "epochs, run_train.py:57), then trainval.py:25 retraining for best epoch + 200 epochs: at "
                  "least 20,000 episodes; tinymeta trains a fixed 20,000 (deviation, PROTOCOLS.md)",
    "task_loss": "protonets/models/few_shot.py:52 the mean negative log-probability over the episode's queries",
    "pool": "protonets/models/few_shot.py:68-74 conv_block: Conv2d(3, padding=1), BatchNorm2d, ReLU, MaxPool2d(2)",
    "conv_padding": "protonets/models/few_shot.py:70 padding=1",
    "features": "protonets/models/few_shot.py:81 Flatten: 64 x 1 x 1 = 64 features on 28x28",
    "bn_eps": "protonets/models/few_shot.py:71 BatchNorm2d defaults: eps 1e-5, scale and shift",
    "transductive": "protonets/models/few_shot.py:39-42 support and query through the encoder in one batch "
                    "(training); at test the original uses running statistics (eval.py:16 model.eval()): "
                    "deviation, PROTOCOLS.md",
    "test_tasks": "scripts/predict/few_shot/run_eval.py:17 --data.test_episodes 1000; eval.py:64 95% CI "
                  "1.96 std / sqrt(1000)",
    "val_tasks": "scripts/train/few_shot/run_train.py:28 --data.test_episodes 100 per validation",
    "seed": "scripts/train/few_shot/train.py:35 torch.manual_seed(1234) (tinymeta's generators differ)",
}


def _vinyals(algorithm, ways, shots):
    """An Omniglot cell on Vinyals et al.'s split under prototypical networks' protocol (jakesnell's code).

    Any learner without an inner loop can take it (matching networks use the same split and
    episodes); it trains on 60-way episodes with 5 queries per class and tests ``ways``-way
    ``shots``-shot with 15 queries per class, every rotation of a character its own class.
    """
    return Config(algorithm=algorithm, dataset="omniglot", ways=ways, shots=shots, queries=15,
                  train_ways=60, train_queries=5, meta_batch=1, meta_optimizer="adam", meta_lr=1e-3,
                  lr_schedule="step", lr_decay_every=2000, lr_decay_factor=0.5, iterations=20000,
                  filters=64, pool=True, conv_padding="symmetric", features="flatten", bn_scale=True,
                  bn_eps=1e-5, task_loss="mean", transductive=True, split_mode="vinyals-trainval",
                  rotations="all-classes", ink=1, val_interval=1000, val_tasks=100, test_tasks=1000,
                  log_interval=100, checkpoint_interval=1000)

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

# Why TAML's, MAML++'s and MANN's tables are unverified: what was searched (issue 27), and what it held.
PAPER_UNREAD = ("the paper's text could not be read here: of the stored copies reachable from this project "
                "(deepai.org, arxiv-vanity.com and docslib.org renderings; arXiv, CVPR, paperswithcode and "
                "emergentmind listings) the search tools return the abstract and opening pages or a summary, "
                "never the experiments section or its tables")

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
    # ANIL's +- is the standard deviation over three random initialisations (its Sec. 4), not a 95% interval
    "anil": ("Raghu et al. 2019, arXiv:1909.09157, Table 2 (ANIL; +- the standard deviation over 3 seeds, Sec. 4)",
             {(20, 1): "96.2 +- 0.5", (20, 5): "98.0 +- 0.3"}),
    "nil": ("Raghu et al. 2019, arXiv:1909.09157, Table 4 (NIL; +- the standard deviation over 3 seeds, Sec. 4)",
            {(20, 1): "96.7 +- 0.3", (20, 5): "98.0 +- 0.04"}),
    "gradient-agreement": ("Eshratifar et al. 2018, arXiv:1810.08178", {}),
    "adml": ("Yin et al. 2018, arXiv:1806.03316 (no Omniglot cell: MAML's Omniglot protocol with FGSM)", {}),
    # Unverified (PAPER_UNREAD says why): no number is quoted
    "taml": ("Jamal & Qi 2019, arXiv:1805.07722 (CVPR 2019), Omniglot table: UNVERIFIED, no number quoted "
             "(" + PAPER_UNREAD + "; no code of the authors is known; the one secondary quote found, a community "
             "list, cainiaomyf/FSL-Insight@bbb5920 Optimization.md, gives a row 'TAML' 99.23 +- 0.35 at 5-way "
             "1-shot without saying which variant, so neither cell takes it)", {}),
    # Unverified (PAPER_UNREAD): the figures as others quote the paper. 5-way 1-shot, 20-way 1-shot and 20-way
    # 5-shot agree between paperswithcode.com/paper/how-to-train-your-maml ("Results from the Paper": 99.47,
    # 97.65, 99.33%, no intervals) and REFERENCE.md's reimplementations; 5-way 5-shot does not (99.85% there,
    # 99.93 in REFERENCE.md), so both are given. The +- of the paper is a standard deviation over 3 seeds,
    # not a 95% interval (the author, HowToTrainYourMAMLPytorch issue #20; MAMLPP_OMNIGLOT_SOURCES["seed"]).
    "maml++": ("Antoniou et al. 2019, arXiv:1810.09502, Omniglot table (MAML++): UNVERIFIED, as quoted by "
               "paperswithcode.com ('Results from the Paper', no intervals) and by reimplementations "
               "(REFERENCE.md), not read in the paper (" + PAPER_UNREAD + "); the paper's +- is the standard "
               "deviation over 3 seeds (the author, AntreasAntoniou/HowToTrainYourMAMLPytorch issue #20, "
               "2019-08-29)",
               {(5, 1): "99.47", (5, 5): "99.85 (paperswithcode) or 99.93 (REFERENCE.md): the quotes disagree",
                (20, 1): "97.65", (20, 5): "99.33"}),
    "matching": ("Vinyals et al. 2016, arXiv:1606.04080, Table 1 (Matching Nets, Omniglot, no fine-tuning)",
                 {(5, 1): "98.1", (5, 5): "98.9", (20, 1): "93.8", (20, 5): "98.5"}),
    "protonet": ("Snell et al. 2017, arXiv:1703.05175, Table 1 (Omniglot, Vinyals' split; no CI given)",
                 {(5, 1): "98.8", (5, 5): "99.7", (20, 1): "96.0", (20, 5): "98.9"}),
    "relationnet": ("Sung et al. 2018, arXiv:1711.06025, Table 1 (Relation Net)",
                    {(5, 1): "99.6 +- 0.2", (5, 5): "99.8 +- 0.1", (20, 1): "97.6 +- 0.2", (20, 5): "99.1 +- 0.1"}),
}
# Each algorithm on Vinyals' split: the code its protocol follows, and that code's settings.
# Matching networks: no code released by the authors; the paper's Sec. 4.1.1 gives the split and the
# network, one reimplementation the training (each setting below says where).
MATCHING_CODE = ("none released by the authors; settings from the paper's Sec. 4.1.1 and the reimplementation "
                 "oscarknagg/few-shot (experiments/matching_nets.py), which reproduces the paper's Omniglot cells "
                 "with the l2 distance but reports 92.0 / 93.2 / 75.6 / 77.8 with the paper's cosine (README.md, "
                 "Matching Networks table)")
MATCHING_SOURCES = {
    "split_mode": "paper Sec. 4.1.1: 1200 characters for training (with rotations as new classes), the other 423 "
                  "for testing; as prototypical networks' code ships it (vinyals trainval/test). Deviation from "
                  "oscarknagg/few-shot, which trains on the 30 background alphabets and tests on the 20 evaluation "
                  "ones (few_shot/datasets.py OmniglotDataset, scripts/prepare_omniglot.py)",
    "rotations": "paper Sec. 4.1.1 / Santoro et al.: rotations by multiples of 90 degrees as new classes",
    "pool": "paper Sec. 4.1.1: 4 modules of 3x3 conv (64 filters), batch norm, ReLU, 2x2 max-pool: 64 features",
    "fce": "paper Table 1: the Omniglot rows use no full context embeddings (check the table: from the "
           "reimplementations' reading); oscarknagg/few-shot experiments/experiments.txt runs Omniglot with "
           "--fce False",
    "ways": "the cell's N-way K-shot episodes in training too: the paper's rule that test and train conditions "
            "must match (Sec. 2.2). Deviation from oscarknagg/few-shot experiments/experiments.txt, whose "
            "commands set only --k-test and --n-test, so every cell trains on the defaults 5-way 1-shot "
            "(experiments/matching_nets.py:30, 32)",
    "meta_batch": "oscarknagg/few-shot experiments/matching_nets.py:79 with few_shot/core.py NShotTaskSampler "
                  "(num_tasks=1): one episode per Adam step",
    "meta_lr": "oscarknagg/few-shot experiments/matching_nets.py:94 Adam, learning rate 1e-3. Deviation: its "
               "ReduceLROnPlateau (line 115: halve after 20 epochs without a better validation accuracy) is not "
               "applied; the rate stays 1e-3",
    "iterations": "oscarknagg/few-shot experiments/matching_nets.py:41, 44: 100 epochs x 100 episodes on Omniglot",
    "train_queries": "oscarknagg/few-shot experiments/matching_nets.py:34 q_train 15 per class",
    "queries": "oscarknagg/few-shot experiments/matching_nets.py:35 q_test 1 per class",
    "test_tasks": "oscarknagg/few-shot experiments/matching_nets.py:40 1000 evaluation episodes",
    "task_loss": "paper Eq. 1-2: the mean negative log-probability of the query labels (oscarknagg/few-shot "
                 "few_shot/matching.py: NLLLoss of the log of the attention-weighted labels). Deviation: its "
                 "gradient-norm clipping at 1 (clip_grad_norm_ in matching_net_episode) is not applied",
}


def _matching(ways, shots):
    """Matching networks' Omniglot cell (Vinyals et al. 2016, Table 1) on Vinyals' split: one N-way episode
    per step, 15 queries per class, as oscarknagg/few-shot trains (MATCHING_SOURCES)."""
    return _vinyals("matching", ways, shots).replace(
        queries=1, train_ways=None, train_queries=15, meta_batch=1, lr_schedule="constant", lr_decay_every=None,
        iterations=10_000, fce=False)


VINYALS_CODES = {"protonet": (PROTONET_CODE, VINYALS_SOURCES), "matching": (MATCHING_CODE, MATCHING_SOURCES)}

# TAML's own settings (tinymeta/algorithms/taml.py says what could and could not be read of the paper)
TAML_SOURCES = {
    "taml_measure": "Jamal & Qi 2019, Sec. 3.1 (entropy maximisation/reduction: lambda [-H_i(f_theta) + "
                    "H_i(f_theta_i)]) or Sec. 3.2 (inequality minimisation: lambda I({L_i(f_theta)}), "
                    "the Theil index among its measures)",
    "taml_lambda": "UNVERIFIED: the paper's lambda could not be read (" + PAPER_UNREAD + "); 1.0 is tinymeta's "
                   "choice, to be replaced by the paper's value once read",
    "algorithm": "Jamal & Qi 2019: TAML on MAML; the network and every other setting are MAML's Omniglot "
                 "protocol (the settings above), as issue 27 asks. The paper's own training settings (meta-batch, "
                 "inner steps, inner and outer rates, iterations) are UNVERIFIED: its experiments section could "
                 "not be read, so whether any of MAML's settings here deviates from the paper is unknown",
}


# MANN (Santoro et al. 2016) on Omniglot episodes: the paper's 5-class one-hot setting, as
# tristandeleu/ntm-one-shot (a reimplementation; DeepMind released no code) at its HEAD.
MANN_CODE = "tristandeleu/ntm-one-shot@617aec9"
MANN_SOURCES = {
    "ways": "examples/omniglot.py:19-20 nb_samples=5 classes per episode",
    "shots": "examples/omniglot.py:20 nb_samples_per_class=10: 50-step episodes",
    "meta_batch": "examples/omniglot.py:19 batch_size=16 episodes per update",
    "meta_lr": "examples/omniglot.py:27 lasagne.updates.adam(learning_rate=1e-3)",
    "task_loss": "examples/omniglot.py:26 mean categorical cross-entropy over every step of every episode",
    "hidden": "examples/omniglot.py:24 controller_size=200 (LSTM, mann/model.py:48-56)",
    "memory_heads": "examples/omniglot.py:24 nb_reads=4; memory 128 x 40 (memory_shape), mann/model.py:12-14",
    "algorithm": "mann/model.py:63-67 each head writes with sigmoid(alpha) w^r_{t-1} + (1 - sigmoid(alpha)) at its "
                 "least-used location, zeroed first (model.py:69-71); model.py:36 usage decay gamma 0.95; "
                 "model.py:20-25 initial memory 1e-6, zero controller state and reads, one-hot weights",
    "dataset": "mann/model.py:89-95 each image joined with the one-hot label of the step before (zeros first); "
               "mann/utils/images.py:20 episode order shuffled; images.py:36-38 20x20, strokes 1",
    "split_mode": "paper Sec. 4.1: 1200 training characters, 423 test ('reptile' split: 1200/423)",
    "rotations": "paper Sec. 4.1 rotations as augmentation; here a random quarter turn per class per episode",
    "iterations": "paper Fig. 2: 100,000 training episodes, counted as both reimplementations count them, one "
                  "update of 16 episodes each: tristandeleu's loop trains until stopped and prints each update of "
                  "16 as an 'Episode' (examples/omniglot.py:20, 40, 47); snowkylin/ntm@7db4068 trains 100,000 "
                  "updates of 16 (one_shot_learning.py:20-21) and its curve's 2nd instance passes 80% after about "
                  "25,000 (images/MANN_one_hot.png). Read as 6,250 updates (100,000 / 16) before 2026-12-07: "
                  "16-49 points under the quoted Table 1 at the 2nd-10th instance (RESULTS.md)",
    "test_tasks": "1000 test episodes (the paper does not say how many)",
    "mann_write": "key: paper Sec. 3.2, M_t(i) = M_{t-1}(i) + w^w_t(i) k_t, the read key is what is written; "
                  "add (mann-add-omniglot-5way): mann/model.py:59, 72, a separate tanh add vector a_t is written",
    "mann_least_used": "each: head h writes a new memory to the h-th least-used location (mann/model.py:63-67); "
                       "all (--mann-least-used all): every head to all n least used, the paper's w^lu (Sec. 3.2), "
                       "as snowkylin/ntm@7db4068 ntm/mann_cell.py:140-141",
    "episode_shift": "paper Sec. 4.1 translations, by how much not said; mann/utils/generators.py:12 max_shift=10 "
                     "of 105 pixels by default, examples/omniglot.py:20 max_shift=0 in the run; here 2 of 20",
}
# % correct at the k-th instance of a class, 5 classes, one-hot labels. UNVERIFIED: Table 1 could not be read
# (PAPER_UNREAD); the figures are as the session that added them wrote them. Short of the paper: tristandeleu's
# metric reports the 1st-5th and 10th instance (mann/utils/metrics.py:7), and a quote of the paper's text in
# karpathy/paper-notes issue 6 gives 82.8% at the 2nd and 94.9% by the 5th (PROTOCOLS.md).
PAPER_MANN_TABLE1 = {
    "mann": {1: 36.4, 2: 82.8, 3: 91.0, 4: 92.6, 5: 94.9, 10: 98.1},
    "lstm": {1: 24.4, 2: 49.5, 3: 55.3, 4: 61.0, 5: 63.6, 10: 62.5},
}


def _mann_omniglot(heads: int) -> Config:
    """The paper's 5-class Omniglot episodes (MANN_SOURCES); ``heads`` 0 is its LSTM baseline."""
    return Config(algorithm="mann", dataset="omniglot-episodes", ways=5, shots=10, queries=10, meta_batch=16,
                  inner_lr=0.0, inner_steps=0, eval_inner_steps=0, meta_lr=1e-3, iterations=100000, hidden=(200,),
                  memory_heads=heads, split_mode="reptile", rotations="per-task", val_interval=500, val_tasks=96,
                  test_tasks=1000, log_interval=50, checkpoint_interval=250)


def preset_source(name: str) -> dict:
    """Where a preset comes from: paper and cell, the paper's number, the original code and each setting's line.

    ``{"paper", "cell", "paper_value", "code", "settings": {field: "file:line what"}}``;
    ``settings`` is empty for presets that follow no original code line by line.
    """
    if name in RL_PRESETS:
        return rl_preset_source(name)
    cfg = PRESETS[name]
    if cfg.algorithm == "mann":
        row = "mann" if cfg.memory_heads else "lstm"
        return {"paper": "Santoro et al. 2016, arXiv:1605.06065, Table 1 (Omniglot, 5 classes, one-hot labels): "
                         "UNVERIFIED (" + PAPER_UNREAD + "); whether the table has a 4th-instance column is "
                         "unconfirmed (issue 27 and REFERENCE.md name 1st, 2nd, 3rd, 5th, 10th)",
                "cell": f"{row.upper()} row, accuracy at the 1st-10th instance of a class",
                "paper_value": f"{row.upper()}: " + ", ".join(f"instance {k} {v}%" for k, v in PAPER_MANN_TABLE1[row].items()),
                "code": MANN_CODE, "settings": dict(MANN_SOURCES)}
    if cfg.algorithm == "siamese":
        contrastive = cfg.siamese_loss == "contrastive"
        return {"paper": BOOK_CONTRASTIVE if contrastive else KOCH_PAPER,
                "cell": f"Omniglot {cfg.ways}-way {cfg.shots}-shot within-alphabet",
                "paper_value": None if contrastive else "92.0", "code": BOOK_CODE if contrastive else KOCH_CODE,
                "settings": {**SIAMESE_OMNIGLOT_SOURCES, **(SIAMESE_CONTRASTIVE_SOURCES if contrastive else {})}}
    if cfg.dataset != "omniglot":
        return {"paper": None, "cell": None, "paper_value": None, "code": None, "settings": {}}
    paper, values = PAPERS[cfg.algorithm]
    cell = {"paper": paper, "cell": f"Omniglot {cfg.ways}-way {cfg.shots}-shot",
            "paper_value": values.get((cfg.ways, cfg.shots))}
    if cfg.algorithm == "maml++":
        settings = {k: v.format(ways=cfg.ways, shots=cfg.shots) for k, v in MAMLPP_OMNIGLOT_SOURCES.items()}
        return {**cell, "code": MAMLPP_CODE, "settings": settings}
    if cfg.split_mode.startswith("vinyals"):
        code, sources = VINYALS_CODES[cfg.algorithm]
        return {**cell, "cell": cell["cell"] + " (Vinyals' split)", "code": code, "settings": dict(sources)}
    reptile = cfg.algorithm == "reptile"
    code, settings = ORIGINAL_CODE.get(cfg.algorithm, (REPTILE_CODE, REPTILE_OMNIGLOT_SOURCES) if reptile
                                       else (MAML_CODE, MAML_OMNIGLOT_SOURCES))
    settings = dict(settings)
    if cfg.algorithm == "taml":
        settings.update(TAML_SOURCES)
    return {**cell, "code": code, "settings": settings}


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


def _mamlpp_omniglot(ways, shots):
    """MAML++ on Omniglot under its original code's protocol (MAMLPP_OMNIGLOT_SOURCES cites every line)."""
    return Config(algorithm="maml++", dataset="omniglot", ways=ways, shots=shots, queries=1, meta_batch=8,
                  inner_lr=0.1, inner_steps=5, eval_inner_steps=5, meta_optimizer="adam", meta_lr=1e-3,
                  lr_schedule="cosine", meta_lr_min=1e-5, iterations=50000, epoch_iterations=500,
                  multi_step_loss_iterations=5000, first_order_iterations=0, learned_step_rates=True,
                  per_step_bn=True, adapt_norm=False, filters=64, pool=True, conv_padding="symmetric",
                  features="flatten", head_init="glorot", bn_scale=True, bn_eps=1e-5, task_loss="mean",
                  transductive=True, ink=0, rotations="per-task-train", split_mode="maml", activation="leaky_relu",
                  test_tasks=600,
                  val_interval=1000, val_tasks=100, log_interval=100)


def _mamlpp_sine(shots):
    """MAML's sine protocol with MAML++'s options (no paper cell: the options' ablation ground).

    Five inner steps (so that the multi-step loss and per-step rates have steps to act on),
    evaluated with the five the rates are learned for; learned per-step rates, the
    multi-step loss over the first tenth of training and the cosine outer schedule in
    epochs of 500, as MAML++'s Omniglot configuration; second order throughout.
    """
    return _sine("maml", shots).replace(algorithm="maml++", inner_steps=5, eval_inner_steps=5,
                                        learned_step_rates=True, multi_step_loss_iterations=7000,
                                        epoch_iterations=500, lr_schedule="cosine", meta_lr_min=1e-5)


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
    for ways in (5, 20):  # MAML++ (issue 27)
        for shots in (1, 5):
            presets[f"mamlpp-omniglot-{ways}w{shots}s"] = _mamlpp_omniglot(ways, shots)
    for k in (5, 10, 20):
        presets[f"mamlpp-sine-{k}shot"] = _mamlpp_sine(k)
    # CAML (CAVIA) on sine: 5 context parameters (the code's default), and the other context sizes of the
    # paper's sine table (2 and 50: unconfirmed against the paper's PDF)
    for k in (5, 10, 20):
        presets[f"caml-sine-{k}shot"] = _caml_sine(k)
        for context in (2, 50):
            presets[f"caml-sine-{k}shot-context{context}"] = _caml_sine(k, context)
    # Learners without an inner loop on Vinyals' split (prototypical networks' protocol)
    for algo in VINYALS_CODES:
        for ways in (5, 20):
            for shots in (1, 5):
                presets[f"{algo}-omniglot-{ways}w{shots}s"] = (_matching(ways, shots) if algo == "matching"
                                                              else _vinyals(algo, ways, shots))
    # ADML on Omniglot: MAML's protocol for the cell (whatever MAML's preset is), plus the FGSM epsilon.
    # epsilon 0.2 on images in [0, 1], as the book's ADML notebook; the paper's values and pixel scale are
    # unconfirmed (its text could not be read here), and its experiments are on MiniImageNet and CIFAR-100.
    for ways in (5, 20):
        for shots in (1, 5):
            presets[f"adml-omniglot-{ways}w{shots}s"] = presets[f"maml-omniglot-{ways}w{shots}s"].replace(
                algorithm="adml", adv_epsilon=0.2)
    # TAML on MAML's protocols (its network and settings; the paper's experiments section could not be read):
    # the Omniglot 5-way 1-shot cell with each variant (entropy; the Theil index, the first of the paper's
    # inequality measures), and sine with the Theil index (entropy needs classes). lambda = 1.0 is tinymeta's
    # choice: the paper's value is unverified (TAML_SOURCES).
    for measure in ("entropy", "theil"):
        presets[f"taml-{measure}-omniglot-5w1s"] = presets["maml-omniglot-5w1s"].replace(
            algorithm="taml", taml_measure=measure, taml_lambda=1.0)
    for k in (5, 10, 20):
        presets[f"taml-sine-{k}shot"] = _sine("taml", k).replace(taml_measure="theil", taml_lambda=1.0)
    # MANN and its LSTM baseline on Omniglot episodes, the label shown one step late (Santoro et al. 2016)
    presets["mann-omniglot-5way"] = _mann_omniglot(4)
    presets["lstm-omniglot-5way"] = _mann_omniglot(0)
    # the reference reimplementation's write (a separate add vector), beside the paper's (the key): PROTOCOLS.md
    presets["mann-add-omniglot-5way"] = _mann_omniglot(4).replace(mann_write="add")
    # Siamese networks (the book's chapter 2): Koch et al.'s cell, and the book's contrastive loss on it
    presets["siamese-omniglot-20w1s"] = _siamese("bce")
    presets["siamese-contrastive-omniglot-20w1s"] = _siamese("contrastive")
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
    preset = PRESETS.get(f"{'mamlpp' if algorithm == 'maml++' else algorithm}-{cell}")
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

#!/usr/bin/env bash
# The CPU cells of RESULTS.md, exactly as they were run (one command per line, from the repo root).
# Each `train` writes results/runs/<name>/{config.json,log.jsonl,test.json,curves.png};
# each `evaluate` writes the JSON named by --out. RESULTS.md's tables are made from those files
# by `python -m tinymeta report`. The Omniglot runs stop long before the papers' iterations (a CPU
# budget of one sitting): MAML in two sittings of 50 minutes (the second resumes the first), Reptile in
# one of 80 minutes; each is evaluated where it stopped, then plotted. They ran side by side, one core
# each (OPENBLAS_NUM_THREADS=1). Reptile's run is the corrected protocol (issue 12): one sitting on a
# shared, busy CPU (1-2 s per iteration), stopped at iteration 3000, evaluated there after 50 steps on 100
# validation and 100 test tasks (of the preset's 10,000: a CPU budget), then resumed for a few more
# iterations (their validation is in the log).
# The first CAML sine runs (issue 15) ran three at a time beside other jobs, niced (nice -n 5) with
# OPENBLAS_NUM_THREADS=1. The first MAML-vs-ADML pair, trained before the presets followed the original
# code, is in results/runs/old-protocol/ with its commands.
set -euo pipefail
python -m tinymeta train --preset maml-sine-5shot --logdir results/runs/maml-sine-5shot --overwrite --no-progress
python -m tinymeta train --preset maml-sine-10shot --logdir results/runs/maml-sine-10shot --overwrite --no-progress
python -m tinymeta train --preset maml-sine-20shot --logdir results/runs/maml-sine-20shot --overwrite --no-progress
python -m tinymeta train --preset pretrained-sine-5shot --logdir results/runs/pretrained-sine-5shot --overwrite --no-progress
python -m tinymeta train --preset pretrained-sine-10shot --logdir results/runs/pretrained-sine-10shot --overwrite --no-progress
python -m tinymeta train --preset pretrained-sine-20shot --logdir results/runs/pretrained-sine-20shot --overwrite --no-progress
python -m tinymeta train --preset meta-sgd-sine-5shot --logdir results/runs/meta-sgd-sine-5shot --overwrite --no-progress
python -m tinymeta train --preset meta-sgd-sine-10shot --logdir results/runs/meta-sgd-sine-10shot --overwrite --no-progress
python -m tinymeta train --preset meta-sgd-sine-20shot --logdir results/runs/meta-sgd-sine-20shot --overwrite --no-progress
python -m tinymeta train --preset fomaml-sine-10shot --logdir results/runs/fomaml-sine-10shot --overwrite --no-progress
python -m tinymeta train --preset reptile-sine-10shot --logdir results/runs/reptile-sine-10shot --overwrite --no-progress
python -m tinymeta evaluate --logdir results/runs/maml-sine-5shot --shots 5 --steps 1 --out results/runs/maml-sine-5shot/eval-5shot-1step.json
python -m tinymeta evaluate --logdir results/runs/maml-sine-5shot --shots 10 --steps 1 --out results/runs/maml-sine-5shot/eval-10shot-1step.json
python -m tinymeta evaluate --logdir results/runs/maml-sine-5shot --shots 20 --steps 1 --out results/runs/maml-sine-5shot/eval-20shot-1step.json
python -m tinymeta evaluate --logdir results/runs/maml-sine-10shot --shots 5 --steps 1 --out results/runs/maml-sine-10shot/eval-5shot-1step.json
python -m tinymeta evaluate --logdir results/runs/maml-sine-10shot --shots 10 --steps 1 --out results/runs/maml-sine-10shot/eval-10shot-1step.json
python -m tinymeta evaluate --logdir results/runs/maml-sine-10shot --shots 20 --steps 1 --out results/runs/maml-sine-10shot/eval-20shot-1step.json
python -m tinymeta evaluate --logdir results/runs/maml-sine-20shot --shots 5 --steps 1 --out results/runs/maml-sine-20shot/eval-5shot-1step.json
python -m tinymeta evaluate --logdir results/runs/maml-sine-20shot --shots 10 --steps 1 --out results/runs/maml-sine-20shot/eval-10shot-1step.json
python -m tinymeta evaluate --logdir results/runs/maml-sine-20shot --shots 20 --steps 1 --out results/runs/maml-sine-20shot/eval-20shot-1step.json
python -m tinymeta evaluate --logdir results/runs/meta-sgd-sine-5shot --shots 5 --steps 1 --out results/runs/meta-sgd-sine-5shot/eval-5shot-1step.json
python -m tinymeta evaluate --logdir results/runs/meta-sgd-sine-5shot --shots 10 --steps 1 --out results/runs/meta-sgd-sine-5shot/eval-10shot-1step.json
python -m tinymeta evaluate --logdir results/runs/meta-sgd-sine-5shot --shots 20 --steps 1 --out results/runs/meta-sgd-sine-5shot/eval-20shot-1step.json
python -m tinymeta evaluate --logdir results/runs/meta-sgd-sine-10shot --shots 5 --steps 1 --out results/runs/meta-sgd-sine-10shot/eval-5shot-1step.json
python -m tinymeta evaluate --logdir results/runs/meta-sgd-sine-10shot --shots 10 --steps 1 --out results/runs/meta-sgd-sine-10shot/eval-10shot-1step.json
python -m tinymeta evaluate --logdir results/runs/meta-sgd-sine-10shot --shots 20 --steps 1 --out results/runs/meta-sgd-sine-10shot/eval-20shot-1step.json
python -m tinymeta evaluate --logdir results/runs/meta-sgd-sine-20shot --shots 5 --steps 1 --out results/runs/meta-sgd-sine-20shot/eval-5shot-1step.json
python -m tinymeta evaluate --logdir results/runs/meta-sgd-sine-20shot --shots 10 --steps 1 --out results/runs/meta-sgd-sine-20shot/eval-10shot-1step.json
python -m tinymeta evaluate --logdir results/runs/meta-sgd-sine-20shot --shots 20 --steps 1 --out results/runs/meta-sgd-sine-20shot/eval-20shot-1step.json
# MAML 5w1s, corrected protocol: a sitting of 5900 s (6,755 iterations), then one of 840 s (to 8,933) with the
# --resume line (--time-limit 840), then one of 7200 s (to 23,474; beside Meta-SGD's first sitting, one core
# each), then one of 1500 s (to 27,523), then one of 7800 s (to 46,966; beside the issue-15 runs, one core
# each), then one of 5472 s that reached the preset's 60,000 and wrote test.json (--time-limit 6600; beside
# Meta-SGD's fifth sitting); each later sitting is that line again, then the evaluate and plot lines
python -m tinymeta train --preset maml-omniglot-5w1s --logdir results/runs/maml-omniglot-5w1s --data-dir ../shared/data/omniglot --time-limit 5900 --no-progress --overwrite
python -m tinymeta train --logdir results/runs/maml-omniglot-5w1s --data-dir ../shared/data/omniglot --time-limit 5900 --no-progress --resume
python -m tinymeta evaluate --logdir results/runs/maml-omniglot-5w1s --data-dir ../shared/data/omniglot --out results/runs/maml-omniglot-5w1s/eval-test.json
python -m tinymeta plot results/runs/maml-omniglot-5w1s --out results/runs/maml-omniglot-5w1s/curves.png
# Meta-SGD 5w1s, corrected protocol: a first sitting of 5600 s (11,702 iterations), beside MAML's third sitting
# (one core each), then one of 840 s (to 13,948), then a short one stopped with Ctrl-C (to 14,118), then one of 900 s (to 16,384),
# one of 5400 s (to 29,170, beside MAML's last sitting), one of 2450 s (beside first-order MAML's first), one of
# 8100 s (to 54,330, beside first-order MAML's second), one of 1200 s (to 58,324), and one that reached the preset's
# 60,000 and wrote test.json (--time-limit 1500, beside first-order MAML's fourth); each later sitting resumes it as
# MAML's do (the --resume line above, with its --logdir)
python -m tinymeta train --preset meta-sgd-omniglot-5w1s --logdir results/runs/meta-sgd-omniglot-5w1s --data-dir ../shared/data/omniglot --time-limit 5600 --no-progress --overwrite
python -m tinymeta evaluate --logdir results/runs/meta-sgd-omniglot-5w1s --data-dir ../shared/data/omniglot --out results/runs/meta-sgd-omniglot-5w1s/eval-test.json
python -m tinymeta plot results/runs/meta-sgd-omniglot-5w1s --out results/runs/meta-sgd-omniglot-5w1s/curves.png
# first-order MAML 5w1s: a first sitting of 2500 s (to 11,801), beside Meta-SGD's, then one of 4800 s (to 40,156),
# one of 1200 s (to 47,698), and one that reached the preset's 60,000 and wrote test.json (--time-limit 3000); each
# later sitting resumes it as MAML's do
python -m tinymeta train --preset fomaml-omniglot-5w1s --logdir results/runs/fomaml-omniglot-5w1s --data-dir ../shared/data/omniglot --time-limit 2500 --no-progress
python -m tinymeta evaluate --logdir results/runs/fomaml-omniglot-5w1s --data-dir ../shared/data/omniglot --out results/runs/fomaml-omniglot-5w1s/eval-test.json
python -m tinymeta plot results/runs/fomaml-omniglot-5w1s --out results/runs/fomaml-omniglot-5w1s/curves.png
python -m tinymeta train --preset reptile-omniglot-5w1s --logdir results/runs/reptile-omniglot-5w1s --data-dir ../shared/data/omniglot --stop-at 3000 --val-interval 500 --val-tasks 100 --no-progress --overwrite
python -m tinymeta evaluate --logdir results/runs/reptile-omniglot-5w1s --data-dir ../shared/data/omniglot --split val --tasks 100 --out results/runs/reptile-omniglot-5w1s/eval-val.json
python -m tinymeta evaluate --logdir results/runs/reptile-omniglot-5w1s --data-dir ../shared/data/omniglot --tasks 100 --out results/runs/reptile-omniglot-5w1s/eval-test.json
python -m tinymeta train --logdir results/runs/reptile-omniglot-5w1s --data-dir ../shared/data/omniglot --resume --stop-at 4000 --time-limit 900 --no-progress
python -m tinymeta plot results/runs/reptile-omniglot-5w1s --out results/runs/reptile-omniglot-5w1s/curves.png
# Reptile 5w1s's next sittings: 5400 s (4,000 -> 18,172; beside ANIL 20w1s's first, one core each) and 1100 s (to
# 21,135, --time-limit 1100), each evaluated again on 100 test tasks and plotted again (the plot line above); then,
# in one session, three sittings stopped with Ctrl-C (SIGINT: a checkpoint at the next iteration boundary) to go on
# with a faster engine or a longer time limit: to 22,822, to 30,118, and 50,058 (--time-limit 5040)
python -m tinymeta train --logdir results/runs/reptile-omniglot-5w1s --data-dir ../shared/data/omniglot --resume --time-limit 5400 --no-progress
python -m tinymeta evaluate --logdir results/runs/reptile-omniglot-5w1s --data-dir ../shared/data/omniglot --tasks 100 --out results/runs/reptile-omniglot-5w1s/eval-test.json
# ANIL 20w1s: a first sitting of 5400 s (to 12,699), beside Reptile's, then one of 1100 s (to 15,287); later sittings
# resume it as MAML's do: in one session, stopped with Ctrl-C to go on with a faster engine or a longer time limit,
# to 16,822, 18,244, 23,489 and 42,213 (--time-limit 5040)
python -m tinymeta train --preset anil-omniglot-20w1s --logdir results/runs/anil-omniglot-20w1s --data-dir ../shared/data/omniglot --time-limit 5400 --no-progress
python -m tinymeta evaluate --logdir results/runs/anil-omniglot-20w1s --data-dir ../shared/data/omniglot --out results/runs/anil-omniglot-20w1s/eval-test.json
python -m tinymeta plot results/runs/anil-omniglot-20w1s --out results/runs/anil-omniglot-20w1s/curves.png
python -m tinymeta train --preset caml-sine-5shot --logdir results/runs/caml-sine-5shot --overwrite --no-progress
python -m tinymeta train --preset caml-sine-10shot --logdir results/runs/caml-sine-10shot --overwrite --no-progress
python -m tinymeta train --preset caml-sine-20shot --logdir results/runs/caml-sine-20shot --overwrite --no-progress
python -m tinymeta train --preset caml-sine-5shot-context2 --logdir results/runs/caml-sine-5shot-context2 --overwrite --no-progress
python -m tinymeta train --preset caml-sine-5shot-context50 --logdir results/runs/caml-sine-5shot-context50 --overwrite --no-progress
# the K = 10 and 20 context-size rows: one after another on one core, beside MAML's Omniglot sitting on the other
python -m tinymeta train --preset caml-sine-10shot-context2 --logdir results/runs/caml-sine-10shot-context2 --overwrite --no-progress
python -m tinymeta train --preset caml-sine-20shot-context2 --logdir results/runs/caml-sine-20shot-context2 --overwrite --no-progress
python -m tinymeta train --preset caml-sine-10shot-context50 --logdir results/runs/caml-sine-10shot-context50 --overwrite --no-progress
python -m tinymeta train --preset caml-sine-20shot-context50 --logdir results/runs/caml-sine-20shot-context50 --overwrite --no-progress
# ADML 5w1s under the corrected preset (issue 15): one sitting on one core after the CAML runs (beside MAML's
# fifth sitting), until its --time-limit; MAML's flagship run above is evaluated under the same FGSM attack
python -m tinymeta train --preset adml-omniglot-5w1s --val-interval 500 --logdir results/runs/adml-omniglot-5w1s --data-dir ../shared/data/omniglot --time-limit 6363 --no-progress
python -m tinymeta evaluate --logdir results/runs/adml-omniglot-5w1s --data-dir ../shared/data/omniglot --attack-epsilon 0.2 --out results/runs/adml-omniglot-5w1s/eval-attack-test.json
python -m tinymeta plot results/runs/adml-omniglot-5w1s --out results/runs/adml-omniglot-5w1s/curves.png
python -m tinymeta evaluate --logdir results/runs/maml-omniglot-5w1s --data-dir ../shared/data/omniglot --attack-epsilon 0.2 --out results/runs/maml-omniglot-5w1s/eval-attack-test.json
python -m tinymeta report
# Transductive or not (issue 28): every finished MAML-family cell evaluated again with each query image through
# batch norm with its task's support set only, on the same 600 test tasks; Reptile both ways at its checkpoint
# (50,326, after a short sitting that was stopped with Ctrl-C), on 100 test tasks as its other evaluations
python -m tinymeta evaluate --logdir results/runs/maml-omniglot-5w1s --data-dir ../shared/data/omniglot --transductive False --out results/runs/maml-omniglot-5w1s/eval-test-nontransductive.json
python -m tinymeta evaluate --logdir results/runs/fomaml-omniglot-5w1s --data-dir ../shared/data/omniglot --transductive False --out results/runs/fomaml-omniglot-5w1s/eval-test-nontransductive.json
python -m tinymeta evaluate --logdir results/runs/meta-sgd-omniglot-5w1s --data-dir ../shared/data/omniglot --transductive False --out results/runs/meta-sgd-omniglot-5w1s/eval-test-nontransductive.json
python -m tinymeta evaluate --logdir results/runs/reptile-omniglot-5w1s --data-dir ../shared/data/omniglot --tasks 100 --out results/runs/reptile-omniglot-5w1s/eval-test.json
python -m tinymeta evaluate --logdir results/runs/reptile-omniglot-5w1s --data-dir ../shared/data/omniglot --tasks 100 --transductive False --out results/runs/reptile-omniglot-5w1s/eval-test-nontransductive.json
# A later session: ANIL 20w1s resumed for one sitting (42,213 -> 54,160, --time-limit 8400, stopped with Ctrl-C after
# 2 h 7 min beside the session's other work: 0.3-3 s per iteration), then evaluated as ANIL and as NIL (no head);
# Reptile 5w1s resumed to 54,121 in a sitting stopped with Ctrl-C, evaluated both ways again on 100 test tasks
python -m tinymeta train --logdir results/runs/anil-omniglot-20w1s --data-dir ../shared/data/omniglot --resume --time-limit 8400 --no-progress
python -m tinymeta evaluate --logdir results/runs/anil-omniglot-20w1s --data-dir ../shared/data/omniglot --out results/runs/anil-omniglot-20w1s/eval-test.json
python -m tinymeta evaluate --logdir results/runs/anil-omniglot-20w1s --data-dir ../shared/data/omniglot --algorithm nil --out results/runs/anil-omniglot-20w1s/eval-nil-test.json
python -m tinymeta evaluate --logdir results/runs/anil-omniglot-20w1s --data-dir ../shared/data/omniglot --transductive False --out results/runs/anil-omniglot-20w1s/eval-test-nontransductive.json
python -m tinymeta plot results/runs/anil-omniglot-20w1s --out results/runs/anil-omniglot-20w1s/curves.png
python -m tinymeta train --logdir results/runs/reptile-omniglot-5w1s --data-dir ../shared/data/omniglot --resume --time-limit 2640 --no-progress
python -m tinymeta evaluate --logdir results/runs/reptile-omniglot-5w1s --data-dir ../shared/data/omniglot --tasks 100 --out results/runs/reptile-omniglot-5w1s/eval-test.json
python -m tinymeta evaluate --logdir results/runs/reptile-omniglot-5w1s --data-dir ../shared/data/omniglot --tasks 100 --transductive False --out results/runs/reptile-omniglot-5w1s/eval-test-nontransductive.json
python -m tinymeta plot results/runs/reptile-omniglot-5w1s --out results/runs/reptile-omniglot-5w1s/curves.png
# A later session: ANIL 20w1s finished (54,160 -> 60,000 in one sitting, --time-limit 6900; train writes its final
# test.json), evaluated again to eval-test.json, as NIL and non-transductively; Reptile 5w1s resumed for one sitting
# and resumed again at the end of the session (stopped with Ctrl-C at 66,366 to give CI the cores); the learners
# without an inner loop benchmarked with every run paused (bench-cpu.json, the plan's source), and the cheapest of
# their cells, Siamese 20-way one-shot, started (killed at 2,100 for the same reason: its checkpoint is at 2,000)
# and evaluated there on its 20 test tasks
python -m tinymeta train --logdir results/runs/anil-omniglot-20w1s --data-dir ../shared/data/omniglot --resume --time-limit 6900 --no-progress
python -m tinymeta evaluate --logdir results/runs/anil-omniglot-20w1s --data-dir ../shared/data/omniglot --out results/runs/anil-omniglot-20w1s/eval-test.json
python -m tinymeta evaluate --logdir results/runs/anil-omniglot-20w1s --data-dir ../shared/data/omniglot --algorithm nil --out results/runs/anil-omniglot-20w1s/eval-nil-test.json
python -m tinymeta evaluate --logdir results/runs/anil-omniglot-20w1s --data-dir ../shared/data/omniglot --transductive False --out results/runs/anil-omniglot-20w1s/eval-test-nontransductive.json
python -m tinymeta plot results/runs/anil-omniglot-20w1s --out results/runs/anil-omniglot-20w1s/curves.png
python -m tinymeta train --logdir results/runs/reptile-omniglot-5w1s --data-dir ../shared/data/omniglot --resume --time-limit 6900 --no-progress
python -m tinymeta bench --only algorithms --repeat 2 --data-dir ../shared/data/omniglot --presets maml-omniglot-20w1s reptile-omniglot-5w1s maml-omniglot-5w5s maml-omniglot-20w5s fomaml-omniglot-5w5s meta-sgd-omniglot-5w5s anil-omniglot-20w5s reptile-omniglot-5w5s siamese-omniglot-20w1s protonet-omniglot-5w1s protonet-omniglot-5w5s protonet-omniglot-20w1s protonet-omniglot-20w5s relationnet-omniglot-5w1s relationnet-omniglot-5w5s relationnet-omniglot-20w1s relationnet-omniglot-20w5s adml-omniglot-5w1s siamese-contrastive-omniglot-20w1s matching-omniglot-5w1s matching-omniglot-5w5s --out results/bench-cpu.json
python -m tinymeta train --preset siamese-omniglot-20w1s --logdir results/runs/siamese-omniglot-20w1s --data-dir ../shared/data/omniglot --time-limit 3000 --no-progress
python -m tinymeta evaluate --logdir results/runs/siamese-omniglot-20w1s --data-dir ../shared/data/omniglot --out results/runs/siamese-omniglot-20w1s/eval-test.json
python -m tinymeta plot results/runs/siamese-omniglot-20w1s --out results/runs/siamese-omniglot-20w1s/curves.png
python -m tinymeta train --logdir results/runs/reptile-omniglot-5w1s --data-dir ../shared/data/omniglot --resume --time-limit 2400 --no-progress
# Session of 2026-12-06 (06:38-09:06): Reptile 5w1s resumed for one sitting; Siamese 20w1s resumed and stopped
# with SIGTERM at its checkpoint of 3,000 to give its core to the NTM's copy task (chapter 5), trained in sittings of
# at most 20 minutes (each ends with a checkpoint): the first line, then the --resume line three times (the last with
# --time-limit 1120), 14,308 steps, figures; then one more --resume sitting of 1,440 s for each of Reptile and
# the NTM (to 80,417 and 21,440), evaluated and plotted again: the figures and evaluation.json chapter 5 shows
python -m tinymeta train --logdir results/runs/siamese-omniglot-20w1s --data-dir ../shared/data/omniglot --resume --time-limit 6900 --no-progress
python -m tinymeta train --logdir results/runs/reptile-omniglot-5w1s --data-dir ../shared/data/omniglot --resume --time-limit 6900 --no-progress
python -m tinymeta copy-task --logdir results/runs/ntm-copy --steps 1000000 --time-limit 1200
python -m tinymeta copy-task --logdir results/runs/ntm-copy --steps 1000000 --time-limit 1200 --resume
python -m tinymeta copy-task-plot results/runs/ntm-copy
python -m tinymeta train --logdir results/runs/reptile-omniglot-5w1s --data-dir ../shared/data/omniglot --resume --time-limit 1440 --no-progress
python -m tinymeta evaluate --logdir results/runs/reptile-omniglot-5w1s --data-dir ../shared/data/omniglot --tasks 100 --out results/runs/reptile-omniglot-5w1s/eval-test.json
python -m tinymeta evaluate --logdir results/runs/reptile-omniglot-5w1s --data-dir ../shared/data/omniglot --tasks 100 --transductive False --out results/runs/reptile-omniglot-5w1s/eval-test-nontransductive.json
# Session of 2026-12-06 (09:34-): the NTM resumed at Adam 1e-4 (sittings of at most 20 minutes: the first line
# once, then the same without --lr, ended with SIGTERM at 44,039 steps), plotted; Reptile 5w1s resumed to its
# 100,000 iterations (the final test on the preset's 10,000 tasks, test.json)
python -m tinymeta copy-task --logdir results/runs/ntm-copy --steps 1000000 --time-limit 1200 --resume --lr 1e-4
python -m tinymeta copy-task --logdir results/runs/ntm-copy --steps 1000000 --time-limit 1200 --resume
python -m tinymeta copy-task-plot results/runs/ntm-copy
python -m tinymeta train --logdir results/runs/reptile-omniglot-5w1s --data-dir ../shared/data/omniglot --resume --time-limit 5400 --no-progress
# Session of 2026-12-06 (12:47-): the seven presets the plan had not measured, benchmarked with nothing else running,
# one process each under `ulimit -v 22000000` so that a meta-batch too large for the machine raises MemoryError
# (MAML++ 20w5s did, at its whole meta-batch of 8, and was measured in chunks of 2); each row merged by hand into
# results/bench-cpu.json (same machine, date and repeat); then Reptile 5w1s's non-transductive test on the
# preset's 10,000 test tasks and a sitting of Siamese 20w1s
for p in taml-entropy-omniglot-5w1s taml-theil-omniglot-5w1s matching-omniglot-20w1s matching-omniglot-20w5s mamlpp-omniglot-5w1s mamlpp-omniglot-20w1s mamlpp-omniglot-20w5s; do (ulimit -v 22000000; python -m tinymeta bench --only algorithms --repeat 2 --data-dir ../shared/data/omniglot --presets $p --out /tmp/bench-$p.json); done
(ulimit -v 22000000; python -m tinymeta bench --only algorithms --repeat 2 --data-dir ../shared/data/omniglot --presets mamlpp-omniglot-20w5s --task-chunk 2 --out /tmp/bench-mamlpp-omniglot-20w5s-chunk2.json)
# the two TAML rows, 0.28 and 0.46 s from two repeats although the two variants do the same arithmetic (one forward
# and backward pass each; the entropy reuses the inner loop's first support forward), measured again with the other
# two runs paused (SIGSTOP): 0.378 and 0.442 s, then in the other order 0.397 (Theil) and 0.393 (entropy); the rows
# hold the second run's figures ("repeat": 10)
python -m tinymeta bench --only algorithms --repeat 10 --data-dir ../shared/data/omniglot --presets taml-entropy-omniglot-5w1s taml-theil-omniglot-5w1s --out /tmp/bench-taml-a.json
python -m tinymeta bench --only algorithms --repeat 10 --data-dir ../shared/data/omniglot --presets taml-theil-omniglot-5w1s taml-entropy-omniglot-5w1s --out /tmp/bench-taml-b.json
python -m tinymeta evaluate --logdir results/runs/reptile-omniglot-5w1s --data-dir ../shared/data/omniglot --transductive False --out results/runs/reptile-omniglot-5w1s/eval-test-nontransductive.json
python -m tinymeta train --logdir results/runs/siamese-omniglot-20w1s --data-dir ../shared/data/omniglot --resume --time-limit 8400 --no-progress
python -m tinymeta evaluate --logdir results/runs/siamese-omniglot-20w1s --data-dir ../shared/data/omniglot --out results/runs/siamese-omniglot-20w1s/eval-test.json
python -m tinymeta plot results/runs/siamese-omniglot-20w1s --out results/runs/siamese-omniglot-20w1s/curves.png
# Session of 2026-12-06 (15:50-): Siamese 20w1s resumed (pinned to one core with taskset); the contrastive Siamese
# started, then stopped with SIGTERM at 1,315 to give its core to the MANN runs (0.3 s an update: the cheapest cell
# left); the MANN with the paper's write, then with tristandeleu's add vectors
python -m tinymeta train --logdir results/runs/siamese-omniglot-20w1s --data-dir ../shared/data/omniglot --resume --time-limit 9000 --no-progress
python -m tinymeta train --preset siamese-contrastive-omniglot-20w1s --logdir results/runs/siamese-contrastive-omniglot-20w1s --data-dir ../shared/data/omniglot --time-limit 9000 --no-progress
python -m tinymeta train --preset mann-omniglot-5way --logdir results/runs/mann-omniglot-5way --data-dir ../shared/data/omniglot --time-limit 7474 --no-progress
python -m tinymeta train --preset mann-add-omniglot-5way --logdir results/runs/mann-add-omniglot-5way --data-dir ../shared/data/omniglot --time-limit 4438 --no-progress
# where the Siamese cell's gap to the paper goes: 100 fixed tasks each, of the test characters and of the training
# characters, within one alphabet (the paper's test) and irrespective of alphabet (as its training tasks are drawn)
python -m tinymeta evaluate --logdir results/runs/siamese-omniglot-20w1s --data-dir ../shared/data/omniglot --tasks 100 --within-alphabet True --out results/runs/siamese-omniglot-20w1s/eval-test-within.json
python -m tinymeta evaluate --logdir results/runs/siamese-omniglot-20w1s --data-dir ../shared/data/omniglot --tasks 100 --within-alphabet False --out results/runs/siamese-omniglot-20w1s/eval-test-across.json
python -m tinymeta evaluate --logdir results/runs/siamese-omniglot-20w1s --data-dir ../shared/data/omniglot --tasks 100 --split train --within-alphabet True --out results/runs/siamese-omniglot-20w1s/eval-train-within.json
python -m tinymeta evaluate --logdir results/runs/siamese-omniglot-20w1s --data-dir ../shared/data/omniglot --tasks 100 --split train --within-alphabet False --out results/runs/siamese-omniglot-20w1s/eval-train-across.json
python -m tinymeta plot results/runs/siamese-omniglot-20w1s --out results/runs/siamese-omniglot-20w1s/curves.png
python -m tinymeta evaluate --logdir results/runs/siamese-contrastive-omniglot-20w1s --data-dir ../shared/data/omniglot --out results/runs/siamese-contrastive-omniglot-20w1s/eval-test.json
python -m tinymeta plot results/runs/mann-omniglot-5way results/runs/mann-add-omniglot-5way --out results/runs/mann-add-omniglot-5way/curves-vs-key.png
# Session of 2026-12-06 (19:03-): the LSTM baseline; the contrastive Siamese resumed (pinned to one core);
# Reptile 5w5s's first 300 iterations (stopped with SIGTERM to give its core to the MANN); the add-vector MANN
# continued past the paper's 100,000 episodes: a copy of its run folder resumed with --iterations 25000 (the loop
# resumes exactly, so it is the line below), stopped with SIGTERM at 10,687 and evaluated there; every MANN-family
# run evaluated on training episodes too; the three presets without the translation of each drawing
python -m tinymeta train --preset lstm-omniglot-5way --logdir results/runs/lstm-omniglot-5way --data-dir ../shared/data/omniglot --time-limit 7001 --no-progress
python -m tinymeta train --preset reptile-omniglot-5w5s --logdir results/runs/reptile-omniglot-5w5s --data-dir ../shared/data/omniglot --time-limit 7001 --no-progress
python -m tinymeta train --logdir results/runs/siamese-contrastive-omniglot-20w1s --data-dir ../shared/data/omniglot --resume --time-limit 6496 --no-progress
python -m tinymeta train --preset mann-add-omniglot-5way --iterations 25000 --logdir results/runs/mann-add-omniglot-5way-long --data-dir ../shared/data/omniglot --no-progress
python -m tinymeta evaluate --logdir results/runs/mann-add-omniglot-5way-long --data-dir ../shared/data/omniglot --out results/runs/mann-add-omniglot-5way-long/eval-test.json
python -m tinymeta evaluate --logdir results/runs/mann-add-omniglot-5way-long --data-dir ../shared/data/omniglot --split train --out results/runs/mann-add-omniglot-5way-long/eval-train.json
python -m tinymeta evaluate --logdir results/runs/mann-omniglot-5way --data-dir ../shared/data/omniglot --split train --out results/runs/mann-omniglot-5way/eval-train.json
python -m tinymeta evaluate --logdir results/runs/mann-add-omniglot-5way --data-dir ../shared/data/omniglot --split train --out results/runs/mann-add-omniglot-5way/eval-train.json
python -m tinymeta evaluate --logdir results/runs/lstm-omniglot-5way --data-dir ../shared/data/omniglot --split train --out results/runs/lstm-omniglot-5way/eval-train.json
python -m tinymeta train --preset lstm-omniglot-5way --episode-shift 0 --logdir results/runs/lstm-omniglot-5way-noshift --data-dir ../shared/data/omniglot --time-limit 4960 --no-progress
python -m tinymeta train --preset mann-add-omniglot-5way --episode-shift 0 --logdir results/runs/mann-add-omniglot-5way-noshift --data-dir ../shared/data/omniglot --time-limit 4460 --no-progress
python -m tinymeta train --preset mann-omniglot-5way --episode-shift 0 --logdir results/runs/mann-omniglot-5way-noshift --data-dir ../shared/data/omniglot --no-progress
python -m tinymeta evaluate --logdir results/runs/lstm-omniglot-5way-noshift --data-dir ../shared/data/omniglot --split train --out results/runs/lstm-omniglot-5way-noshift/eval-train.json
python -m tinymeta evaluate --logdir results/runs/mann-add-omniglot-5way-noshift --data-dir ../shared/data/omniglot --split train --out results/runs/mann-add-omniglot-5way-noshift/eval-train.json
python -m tinymeta evaluate --logdir results/runs/mann-omniglot-5way-noshift --data-dir ../shared/data/omniglot --split train --out results/runs/mann-omniglot-5way-noshift/eval-train.json
python -m tinymeta plot results/runs/lstm-omniglot-5way results/runs/lstm-omniglot-5way-noshift --out results/runs/lstm-omniglot-5way-noshift/curves-vs-shifted.png
python -m tinymeta plot results/runs/mann-add-omniglot-5way-long --out results/runs/mann-add-omniglot-5way-long/curves.png
python -m tinymeta evaluate --logdir results/runs/siamese-contrastive-omniglot-20w1s --data-dir ../shared/data/omniglot --out results/runs/siamese-contrastive-omniglot-20w1s/eval-test.json
python -m tinymeta plot results/runs/siamese-contrastive-omniglot-20w1s --out results/runs/siamese-contrastive-omniglot-20w1s/curves.png
# the presets that max-pool, measured again after ops.max's change (every training paused; MAML++ 20w5s and
# matching networks' 20-way rows, too slow to repeat here, keep their earlier figures); rows merged into
# results/bench-cpu.json by preset (same machine, threads, date and repeat)
(ulimit -v 22000000; python -m tinymeta bench --only algorithms --repeat 2 --data-dir ../shared/data/omniglot --presets protonet-omniglot-5w1s protonet-omniglot-5w5s protonet-omniglot-20w1s protonet-omniglot-20w5s relationnet-omniglot-5w1s relationnet-omniglot-5w5s relationnet-omniglot-20w1s relationnet-omniglot-20w5s siamese-omniglot-20w1s siamese-contrastive-omniglot-20w1s matching-omniglot-5w1s matching-omniglot-5w5s mamlpp-omniglot-5w1s mamlpp-omniglot-20w1s --out /tmp/bench-pool.json)
# Session of 2026-12-06 (22:09-): the contrastive Siamese finished and prototypical networks 5w1s started (one
# core, pinned with taskset); the add-vector MANN continued toward 100,000 updates of 16, the length of a second
# reimplementation (snowkylin/ntm, PROTOCOLS.md), on the other core: stopped with SIGTERM at 12,833 once, to resume
# with validation logging the accuracy at each instance (the same command again, exact resume)
python -m tinymeta train --logdir results/runs/siamese-contrastive-omniglot-20w1s --data-dir ../shared/data/omniglot --resume --time-limit 7776 --no-progress
python -m tinymeta train --preset protonet-omniglot-5w1s --logdir results/runs/protonet-omniglot-5w1s --data-dir ../shared/data/omniglot --time-limit 6645 --no-progress
python -m tinymeta train --logdir results/runs/mann-add-omniglot-5way-long --resume --iterations 100000 --data-dir ../shared/data/omniglot --time-limit 7203 --no-progress
python -m tinymeta evaluate --logdir results/runs/protonet-omniglot-5w1s --data-dir ../shared/data/omniglot --out results/runs/protonet-omniglot-5w1s/eval-test.json
python -m tinymeta evaluate --logdir results/runs/mann-add-omniglot-5way-long --data-dir ../shared/data/omniglot --out results/runs/mann-add-omniglot-5way-long/eval-test.json
python -m tinymeta evaluate --logdir results/runs/mann-add-omniglot-5way-long --data-dir ../shared/data/omniglot --split train --out results/runs/mann-add-omniglot-5way-long/eval-train.json
python -m tinymeta plot results/runs/mann-add-omniglot-5way-long --out results/runs/mann-add-omniglot-5way-long/curves.png
python -m tinymeta plot results/runs/protonet-omniglot-5w1s --out results/runs/protonet-omniglot-5w1s/curves.png
# Session of 2026-12-07 (01:10-): prototypical networks 5w1s and the add-vector MANN resumed, one core each
# (pinned with taskset); the finished ANIL run evaluated to 100 head steps and from a head of zeros (its gap to
# the paper, RESULTS.md's notes), and the MAML flagship from a head of zeros for contrast
python -m tinymeta train --logdir results/runs/protonet-omniglot-5w1s --data-dir ../shared/data/omniglot --time-limit 7125 --no-progress --resume
python -m tinymeta train --logdir results/runs/mann-add-omniglot-5way-long --data-dir ../shared/data/omniglot --time-limit 7125 --no-progress --resume --iterations 100000
# the MANN stopped with SIGTERM at 40,625 and resumed with the faster read (one matmul for the cosines)
python -m tinymeta train --logdir results/runs/mann-add-omniglot-5way-long --data-dir ../shared/data/omniglot --time-limit 6197 --no-progress --resume --iterations 100000
# prototypical networks stopped with SIGTERM at 14,865 and resumed with a longer time limit, to finish
python -m tinymeta train --logdir results/runs/protonet-omniglot-5w1s --data-dir ../shared/data/omniglot --time-limit 4020 --no-progress --resume
python -m tinymeta evaluate --logdir results/runs/anil-omniglot-20w1s --data-dir ../shared/data/omniglot --steps 100 --out results/runs/anil-omniglot-20w1s/eval-test-100steps.json
python -m tinymeta evaluate --logdir results/runs/anil-omniglot-20w1s --data-dir ../shared/data/omniglot --zero-head --out results/runs/anil-omniglot-20w1s/eval-test-zero-head.json
python -m tinymeta evaluate --logdir results/runs/maml-omniglot-5w1s --data-dir ../shared/data/omniglot --zero-head --out results/runs/maml-omniglot-5w1s/eval-test-zero-head.json
python -m tinymeta evaluate --logdir results/runs/protonet-omniglot-5w1s --data-dir ../shared/data/omniglot --out results/runs/protonet-omniglot-5w1s/eval-test.json
python -m tinymeta plot results/runs/protonet-omniglot-5w1s --out results/runs/protonet-omniglot-5w1s/curves.png
python -m tinymeta evaluate --logdir results/runs/mann-add-omniglot-5way-long --data-dir ../shared/data/omniglot --out results/runs/mann-add-omniglot-5way-long/eval-test.json
python -m tinymeta evaluate --logdir results/runs/mann-add-omniglot-5way-long --data-dir ../shared/data/omniglot --split train --out results/runs/mann-add-omniglot-5way-long/eval-train.json
python -m tinymeta plot results/runs/mann-add-omniglot-5way-long --out results/runs/mann-add-omniglot-5way-long/curves.png
# every training stopped: the flagship's preset (for the seed runs' cost) and the MANN presets, merged into
# results/bench-cpu.json by preset
python -m tinymeta bench --only algorithms --repeat 2 --data-dir ../shared/data/omniglot --presets maml-omniglot-5w1s mann-add-omniglot-5way mann-omniglot-5way lstm-omniglot-5way --out /tmp/bench-new.json
# Session of 2026-12-07 from 04:21 (no GPU lent): the add-vector MANN to 100,000 updates on core 0 (its loop's
# own test at the end, test.json), the flagship's second training seed on core 1, then its third on core 0
python -m tinymeta train --logdir results/runs/mann-add-omniglot-5way-long --data-dir ../shared/data/omniglot --time-limit 6211 --no-progress --resume --iterations 100000
python -m tinymeta train --preset maml-omniglot-5w1s --logdir results/runs/maml-omniglot-5w1s-seed1 --data-dir ../shared/data/omniglot --time-limit 6211 --no-progress --seed 1
python -m tinymeta evaluate --logdir results/runs/mann-add-omniglot-5way-long --data-dir ../shared/data/omniglot --split train --out results/runs/mann-add-omniglot-5way-long/eval-train.json
python -m tinymeta plot results/runs/mann-add-omniglot-5way-long --out results/runs/mann-add-omniglot-5way-long/curves.png
python -m tinymeta train --preset maml-omniglot-5w1s --logdir results/runs/maml-omniglot-5w1s-seed2 --data-dir ../shared/data/omniglot --time-limit 2588 --no-progress --seed 2
# From here the MANN presets train 100,000 updates (PROTOCOLS.md); the MANN and LSTM lines above ran them at 6,250
# (add --iterations 6250 to repeat one of those)
# both seeds' sittings resumed for 20 minutes more at their time limits, then evaluated where they stopped
python -m tinymeta train --logdir results/runs/maml-omniglot-5w1s-seed1 --data-dir ../shared/data/omniglot --time-limit 1195 --no-progress --resume
python -m tinymeta train --logdir results/runs/maml-omniglot-5w1s-seed2 --data-dir ../shared/data/omniglot --time-limit 1195 --no-progress --resume
python -m tinymeta evaluate --logdir results/runs/maml-omniglot-5w1s-seed1 --data-dir ../shared/data/omniglot --out results/runs/maml-omniglot-5w1s-seed1/eval-test.json
python -m tinymeta plot results/runs/maml-omniglot-5w1s-seed1 --out results/runs/maml-omniglot-5w1s-seed1/curves.png
python -m tinymeta evaluate --logdir results/runs/maml-omniglot-5w1s-seed2 --data-dir ../shared/data/omniglot --out results/runs/maml-omniglot-5w1s-seed2/eval-test.json
python -m tinymeta plot results/runs/maml-omniglot-5w1s-seed2 --out results/runs/maml-omniglot-5w1s-seed2/curves.png
# Session of 2026-12-07 from 07:36 (no GPU lent): the LSTM baseline to 100,000 updates on core 0 (its loop's own
# test at the end, test.json), then the flagship's third seed there; the second seed to 60,000 on core 1 (test.json),
# then the key-writing MANN toward 100,000 there
python -m tinymeta train --logdir results/runs/lstm-omniglot-5way --data-dir ../shared/data/omniglot --time-limit 6181 --no-progress --resume --iterations 100000
python -m tinymeta train --logdir results/runs/maml-omniglot-5w1s-seed1 --data-dir ../shared/data/omniglot --time-limit 6181 --no-progress --resume
python -m tinymeta train --logdir results/runs/maml-omniglot-5w1s-seed2 --data-dir ../shared/data/omniglot --time-limit 1709 --no-progress --resume
python -m tinymeta train --logdir results/runs/mann-omniglot-5way --data-dir ../shared/data/omniglot --time-limit 1310 --no-progress --resume --iterations 100000
# every training stopped: the goal benchmarks beside PyTorch (torch 2.13.0, CPU build, installed beside the
# project, never a dependency), run twice with OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1; then the runs that
# stopped early evaluated where they stopped
python -m tinymeta bench --only goals --compare torch --repeat 5 --out /tmp/bench-goals-torch.json
python -m tinymeta evaluate --logdir results/runs/mann-omniglot-5way --data-dir ../shared/data/omniglot --out results/runs/mann-omniglot-5way/eval-test.json
python -m tinymeta plot results/runs/mann-omniglot-5way --out results/runs/mann-omniglot-5way/curves.png
# the third seed resumed for one more sitting on one core, then evaluated where it stopped
python -m tinymeta train --logdir results/runs/maml-omniglot-5w1s-seed2 --data-dir ../shared/data/omniglot --time-limit 1111 --no-progress --resume
python -m tinymeta evaluate --logdir results/runs/maml-omniglot-5w1s-seed2 --data-dir ../shared/data/omniglot --out results/runs/maml-omniglot-5w1s-seed2/eval-test.json
python -m tinymeta plot results/runs/maml-omniglot-5w1s-seed2 --out results/runs/maml-omniglot-5w1s-seed2/curves.png
# Session of 2026-12-07 from 10:43 (no GPU lent): the flagship's third seed on core 0, which its time limit
# stopped short of 60,000, finished by a last short sitting (its loop's test at the end, test.json); the key-writing
# MANN on core 1 until 11:08 (stopped with SIGTERM at its checkpoint, 24,279), then on core 1, one after another,
# the matching-network cells under the mended protocol (PROTOCOLS.md) and the 5w1s cell with the l2 distance; the
# first seed's non-transductive test beside them
python -m tinymeta train --logdir results/runs/maml-omniglot-5w1s-seed2 --data-dir ../shared/data/omniglot --time-limit 6251 --no-progress --resume
python -m tinymeta train --logdir results/runs/mann-omniglot-5way --data-dir ../shared/data/omniglot --time-limit 6250 --no-progress --resume --iterations 100000
python -m tinymeta evaluate --logdir results/runs/maml-omniglot-5w1s-seed1 --data-dir ../shared/data/omniglot --transductive False --out results/runs/maml-omniglot-5w1s-seed1/eval-test-nontransductive.json
python -m tinymeta train --preset matching-omniglot-5w1s --logdir results/runs/matching-omniglot-5w1s --data-dir ../shared/data/omniglot --time-limit 4761 --no-progress
python -m tinymeta train --preset matching-omniglot-5w5s --logdir results/runs/matching-omniglot-5w5s --data-dir ../shared/data/omniglot --time-limit 3720 --no-progress
python -m tinymeta train --preset matching-omniglot-5w1s --logdir results/runs/matching-omniglot-5w1s-l2 --data-dir ../shared/data/omniglot --time-limit 2398 --no-progress --matching-distance l2
python -m tinymeta train --preset matching-omniglot-20w1s --logdir results/runs/matching-omniglot-20w1s --data-dir ../shared/data/omniglot --time-limit 1362 --no-progress
python -m tinymeta train --logdir results/runs/maml-omniglot-5w1s-seed2 --data-dir ../shared/data/omniglot --time-limit 900 --no-progress --resume
python -m tinymeta evaluate --logdir results/runs/maml-omniglot-5w1s-seed2 --data-dir ../shared/data/omniglot --transductive False --out results/runs/maml-omniglot-5w1s-seed2/eval-test-nontransductive.json
python -m tinymeta plot results/runs/maml-omniglot-5w1s-seed2 --out results/runs/maml-omniglot-5w1s-seed2/curves.png
python -m tinymeta evaluate --logdir results/runs/mann-omniglot-5way --data-dir ../shared/data/omniglot --out results/runs/mann-omniglot-5way/eval-test.json
python -m tinymeta plot results/runs/mann-omniglot-5way --out results/runs/mann-omniglot-5way/curves.png
python -m tinymeta evaluate --logdir results/runs/matching-omniglot-20w1s --data-dir ../shared/data/omniglot --out results/runs/matching-omniglot-20w1s/eval-test.json
python -m tinymeta plot results/runs/matching-omniglot-5w1s --out results/runs/matching-omniglot-5w1s/curves.png
python -m tinymeta plot results/runs/matching-omniglot-5w5s --out results/runs/matching-omniglot-5w5s/curves.png
python -m tinymeta plot results/runs/matching-omniglot-5w1s-l2 --out results/runs/matching-omniglot-5w1s-l2/curves.png
python -m tinymeta plot results/runs/matching-omniglot-20w1s --out results/runs/matching-omniglot-20w1s/curves.png
# every training stopped, one BLAS thread: the prototypical and matching presets' cost per iteration (the
# transposed convolution now in blocks; matching networks under their new protocol), merged into
# results/bench-cpu.json by preset; the goal benchmarks beside PyTorch (torch 2.13.0, CPU build, beside the project)
python -m tinymeta bench --only algorithms --repeat 2 --data-dir ../shared/data/omniglot --presets protonet-omniglot-5w1s protonet-omniglot-5w5s protonet-omniglot-20w1s protonet-omniglot-20w5s matching-omniglot-5w1s matching-omniglot-5w5s matching-omniglot-20w1s matching-omniglot-20w5s --out /tmp/bench-s44.json
python -m tinymeta bench --only goals --compare torch --repeat 5 --out /tmp/bench-goals-s44.json
# Session of 2026-12-07 13:57-15:35: one run per core pinned with taskset, one BLAS thread; matching networks
# 20w1s to its end, then 20w5s's first sitting (core 0); the key-writing MANN (core 1)
python -m tinymeta train --logdir results/runs/matching-omniglot-20w1s --data-dir ../shared/data/omniglot --time-limit 5855 --no-progress --resume
python -m tinymeta train --preset matching-omniglot-20w5s --logdir results/runs/matching-omniglot-20w5s --data-dir ../shared/data/omniglot --time-limit 2303 --no-progress
python -m tinymeta train --logdir results/runs/mann-omniglot-5way --data-dir ../shared/data/omniglot --time-limit 5855 --no-progress --resume --iterations 100000
python -m tinymeta evaluate --logdir results/runs/mann-omniglot-5way --data-dir ../shared/data/omniglot --out results/runs/mann-omniglot-5way/eval-test.json
python -m tinymeta evaluate --logdir results/runs/matching-omniglot-20w5s --data-dir ../shared/data/omniglot --out results/runs/matching-omniglot-20w5s/eval-test.json
python -m tinymeta plot results/runs/matching-omniglot-20w5s --out results/runs/matching-omniglot-20w5s/curves.png
python -m tinymeta plot results/runs/mann-omniglot-5way --out results/runs/mann-omniglot-5way/curves.png
# Session of 2026-12-07 16:32-18:35: one run per core pinned with taskset, one BLAS thread; matching networks
# 20w5s to its end, then prototypical networks 20w1s (core 0); the key-writing MANN to its end, then prototypical
# networks 5w5s (core 1)
python -m tinymeta train --logdir results/runs/matching-omniglot-20w5s --data-dir ../shared/data/omniglot --time-limit 6758 --no-progress --resume
python -m tinymeta evaluate --logdir results/runs/matching-omniglot-20w5s --data-dir ../shared/data/omniglot --out results/runs/matching-omniglot-20w5s/eval-test.json
python -m tinymeta train --preset protonet-omniglot-20w1s --logdir results/runs/protonet-omniglot-20w1s --data-dir ../shared/data/omniglot --time-limit 4405 --no-progress
python -m tinymeta train --logdir results/runs/mann-omniglot-5way --data-dir ../shared/data/omniglot --time-limit 6758 --no-progress --resume --iterations 100000
python -m tinymeta train --preset protonet-omniglot-5w5s --logdir results/runs/protonet-omniglot-5w5s --data-dir ../shared/data/omniglot --time-limit 1473 --no-progress
python -m tinymeta evaluate --logdir results/runs/protonet-omniglot-20w1s --data-dir ../shared/data/omniglot --out results/runs/protonet-omniglot-20w1s/eval-test.json
python -m tinymeta evaluate --logdir results/runs/protonet-omniglot-5w5s --data-dir ../shared/data/omniglot --out results/runs/protonet-omniglot-5w5s/eval-test.json
python -m tinymeta plot results/runs/protonet-omniglot-20w1s --out results/runs/protonet-omniglot-20w1s/curves.png
python -m tinymeta plot results/runs/protonet-omniglot-5w5s --out results/runs/protonet-omniglot-5w5s/curves.png
# Session of 2026-12-07 19:28-21:33: one run per core pinned with taskset, one BLAS thread; prototypical networks
# 20w1s to its end, then 20w5s's first sitting (core 0); prototypical networks 5w5s (core 1). Beside them on core 0,
# the finished 5-way matching runs tested on the 20-way cells' test tasks
python -m tinymeta train --logdir results/runs/protonet-omniglot-20w1s --data-dir ../shared/data/omniglot --time-limit 6984 --no-progress --resume
python -m tinymeta train --logdir results/runs/protonet-omniglot-5w5s --data-dir ../shared/data/omniglot --time-limit 6984 --no-progress --resume
python -m tinymeta evaluate --logdir results/runs/matching-omniglot-5w1s --ways 20 --data-dir ../shared/data/omniglot --out results/runs/matching-omniglot-5w1s/eval-test-20w1s.json
python -m tinymeta evaluate --logdir results/runs/matching-omniglot-5w1s --ways 20 --shots 5 --data-dir ../shared/data/omniglot --out results/runs/matching-omniglot-5w1s/eval-test-20w5s.json
python -m tinymeta evaluate --logdir results/runs/matching-omniglot-5w1s-l2 --ways 20 --data-dir ../shared/data/omniglot --out results/runs/matching-omniglot-5w1s-l2/eval-test-20w1s.json
python -m tinymeta evaluate --logdir results/runs/matching-omniglot-5w5s --ways 20 --data-dir ../shared/data/omniglot --out results/runs/matching-omniglot-5w5s/eval-test-20w5s.json
python -m tinymeta train --preset protonet-omniglot-20w5s --logdir results/runs/protonet-omniglot-20w5s --data-dir ../shared/data/omniglot --time-limit 1618 --no-progress
python -m tinymeta evaluate --logdir results/runs/protonet-omniglot-5w5s --data-dir ../shared/data/omniglot --out results/runs/protonet-omniglot-5w5s/eval-test.json
python -m tinymeta evaluate --logdir results/runs/protonet-omniglot-20w1s --split train --data-dir ../shared/data/omniglot --out results/runs/protonet-omniglot-20w1s/eval-train.json
python -m tinymeta evaluate --logdir results/runs/protonet-omniglot-20w5s --data-dir ../shared/data/omniglot --out results/runs/protonet-omniglot-20w5s/eval-test.json
python -m tinymeta plot results/runs/protonet-omniglot-5w5s --out results/runs/protonet-omniglot-5w5s/curves.png
python -m tinymeta plot results/runs/protonet-omniglot-20w5s --out results/runs/protonet-omniglot-20w5s/curves.png
# Session of 2026-12-07 22:35 - 2026-12-08 00:15, on a slower machine than the sittings before (the same runs at
# 1.4-1.9 s per iteration against 0.75-0.79): one run per core pinned with taskset, one BLAS thread; prototypical
# networks 5w5s (core 0; its first line stopped with SIGTERM at 10,263 after a minute, to restart it with a longer
# limit) and 20w5s (core 1, paused with SIGSTOP 23:00-23:17 while its core evaluated protonet 20w1s both ways on
# the first 100 test tasks); both stopped with SIGTERM at 00:15 (checkpoints saved) to leave the end of the session
# to the evaluation and CI
python -m tinymeta train --logdir results/runs/protonet-omniglot-5w5s --data-dir ../shared/data/omniglot --time-limit 7578 --no-progress --resume
python -m tinymeta train --logdir results/runs/protonet-omniglot-5w5s --data-dir ../shared/data/omniglot --time-limit 7896 --no-progress --resume
python -m tinymeta train --logdir results/runs/protonet-omniglot-20w5s --data-dir ../shared/data/omniglot --time-limit 7578 --no-progress --resume
python -m tinymeta evaluate --logdir results/runs/protonet-omniglot-20w1s --tasks 100 --data-dir ../shared/data/omniglot --out results/runs/protonet-omniglot-20w1s/eval-test-100tasks.json
python -m tinymeta evaluate --logdir results/runs/protonet-omniglot-20w1s --tasks 100 --transductive False --data-dir ../shared/data/omniglot --out results/runs/protonet-omniglot-20w1s/eval-test-100tasks-nontransductive.json
python -m tinymeta evaluate --logdir results/runs/protonet-omniglot-5w5s --data-dir ../shared/data/omniglot --out results/runs/protonet-omniglot-5w5s/eval-test.json
python -m tinymeta evaluate --logdir results/runs/protonet-omniglot-20w5s --data-dir ../shared/data/omniglot --out results/runs/protonet-omniglot-20w5s/eval-test.json
python -m tinymeta plot results/runs/protonet-omniglot-5w5s --out results/runs/protonet-omniglot-5w5s/curves.png
python -m tinymeta plot results/runs/protonet-omniglot-20w5s --out results/runs/protonet-omniglot-20w5s/curves.png
python -m tinymeta report

#!/usr/bin/env bash
# The GPU cells of RESULTS.md, in the order they are wanted, as one resumable campaign.
#
# Run it again and again (each call trains for at most $SITTING seconds, e.g. inside a 10-minute
# GPU sitting) until it prints "all GPU cells done". A finished run (test.json present) is skipped;
# an unfinished one continues from its checkpoint with --resume, which gives exactly the numbers of
# an uninterrupted run. The checkpoints (results/runs/*/checkpoint.npz, git-ignored) are what carries
# a campaign from one machine to the next: keep them with the run folders.
#
#   SITTING=540 DATA=data/omniglot bash results/gpu.sh
#
# Each `train` writes results/runs/<preset>/{config.json,log.jsonl,checkpoint.npz} and, when it
# finishes, test.json (600 test tasks) and curves.png; `python -m tinymeta report` makes the page.
set -euo pipefail
SITTING=${SITTING:-540}             # seconds of training in this call, all runs together
DATA=${DATA:-data/omniglot}          # the Omniglot zips (images_background.zip, images_evaluation.zip)
PRESETS=(
  maml-omniglot-5w1s maml-omniglot-20w1s fomaml-omniglot-5w1s meta-sgd-omniglot-5w1s
  anil-omniglot-20w1s nil-omniglot-20w1s reptile-omniglot-5w1s
  maml-omniglot-5w5s maml-omniglot-20w5s fomaml-omniglot-5w5s meta-sgd-omniglot-5w5s
  anil-omniglot-20w5s nil-omniglot-20w5s reptile-omniglot-5w5s
  mamlpp-omniglot-20w1s mamlpp-omniglot-20w5s
)
start=$(date +%s)
for preset in "${PRESETS[@]}"; do
  dir=results/runs/$preset
  [ -f "$dir/test.json" ] && continue
  left=$(( SITTING - ($(date +%s) - start) ))
  if [ "$left" -lt 60 ]; then
    echo "this sitting is over; run again to continue with $preset"
    exit 0
  fi
  if [ -f "$dir/checkpoint.npz" ]; then  # the configuration comes from the checkpoint
    python -m tinymeta train --logdir "$dir" --device cuda --data-dir "$DATA" --time-limit "$left" \
      --no-progress --resume
  else
    python -m tinymeta train --preset "$preset" --logdir "$dir" --device cuda --data-dir "$DATA" \
      --time-limit "$left" --no-progress --overwrite
  fi
  if [ ! -f "$dir/test.json" ]; then
    echo "this sitting is over; run again to continue with $preset"
    exit 0
  fi
done
echo "all GPU cells done"
python -m tinymeta report

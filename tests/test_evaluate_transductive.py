"""`tinymeta evaluate --transductive False`: the evaluation that users of every MAML library ask about,
recorded in the numbers it writes."""
import json

from tinymeta.experiment import cli

TINY = ["--preset", "maml-sine-5shot", "--iterations", "20", "--log-interval", "10", "--val-interval", "10",
        "--val-tasks", "5", "--test-tasks", "10", "--eval-inner-steps", "2", "--no-progress"]


def test_evaluate_says_whether_it_was_transductive_and_an_mlp_without_batch_norm_does_not_care(tmp_path, capsys):
    logdir = tmp_path / "run"
    assert cli.main(["train", *TINY, "--logdir", str(logdir)]) == 0
    outs = {}
    for flag in ("True", "False"):
        out = tmp_path / f"eval-{flag}.json"
        assert cli.main(["evaluate", "--logdir", str(logdir), "--transductive", flag, "--out", str(out)]) == 0
        outs[flag] = json.loads(out.read_text())
    capsys.readouterr()
    assert outs["True"]["transductive"] is True and outs["False"]["transductive"] is False
    # nothing in an MLP pools over examples, so the query images' company changes nothing (but the
    # rounding: float32 matmuls of another shape)
    for a, b in zip(outs["True"]["loss"], outs["False"]["loss"]):
        assert abs(a["mean"] - b["mean"]) <= 1e-5 * abs(a["mean"]) and a["n"] == b["n"] == 10

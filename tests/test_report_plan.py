"""RESULTS.md's Omniglot section: the non-transductive column, NIL's rows from the ANIL run, and the cost
of the unfinished cells, computed from run folders and a benchmark file made here."""
import json

from tinymeta.experiment.presets import PRESETS
from tinymeta.experiment.report import omniglot_plan, omniglot_table


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _ev(mean, iteration, steps=10, tasks=600):
    row = {"mean": mean, "ci95": 0.004, "std": 0.05, "n": tasks}
    return {"split": "test", "tasks": tasks, "steps": steps, "accuracy": [row] * (steps + 1), "iteration": iteration,
            "train_seconds": 600.0, "device": "cpu"}


def test_the_plan_multiplies_iterations_left_by_the_benchmark_and_lists_the_cheapest_first(tmp_path):
    runs = tmp_path / "runs"
    _write(runs / "anil-omniglot-20w1s" / "status.json", {"status": "time limit", "iteration": 50000})
    rows = [{"name": "x", "preset": "anil-omniglot-20w1s", "value": 360.0, "unit": "ms"},   # 0.36 s
            {"name": "y", "preset": "maml-omniglot-5w5s", "value": 1200.0, "unit": "ms"}]   # 1.2 s
    bench = tmp_path / "bench.json"
    _write(bench, {"device": "cpu", "threads": "1", "machine": "x86_64, 2 cores", "date": "2026-12-06",
                   "groups": {"algorithms": rows}})
    lines = omniglot_plan(runs, bench)
    table = [line for line in lines if line.startswith("| ") and "-omniglot-" in line]
    assert table[0] == "| anil-omniglot-20w1s | 50000 of 60000 | 10000 | 0.36 |  | 1.0 |"   # 10,000 x 0.36 s = 1 h
    assert table[1] == "| maml-omniglot-5w5s | 0 of 60000 | 60000 | 1.20 |  | 20.0 |"
    assert all("not measured" in line for line in table[2:])                                # no benchmark row
    assert "cpu, 1 BLAS thread, x86_64, 2 cores, 2026-12-06" in lines[0]
    assert not any(line.startswith("| nil-") for line in table)                             # NIL trains as ANIL


def test_a_finished_cell_leaves_the_plan(tmp_path):
    runs = tmp_path / "runs"
    _write(runs / "maml-omniglot-5w1s" / "status.json",
           {"status": "finished", "iteration": PRESETS["maml-omniglot-5w1s"].iterations})
    plan = omniglot_plan(runs, tmp_path / "none.json")
    assert not any(line.startswith("| maml-omniglot-5w1s |") for line in plan)
    assert any(line.startswith("| maml-omniglot-5w5s |") for line in plan)


def test_the_table_shows_the_non_transductive_figure_of_the_same_iteration_and_nil_from_the_anil_run(tmp_path):
    runs = tmp_path / "runs"
    _write(runs / "maml-omniglot-5w1s" / "test.json", _ev(0.99, 60000))
    _write(runs / "maml-omniglot-5w1s" / "eval-test-nontransductive.json", _ev(0.97, 60000))
    _write(runs / "fomaml-omniglot-5w1s" / "test.json", _ev(0.98, 60000))
    _write(runs / "fomaml-omniglot-5w1s" / "eval-test-nontransductive.json", _ev(0.95, 1000))  # stale: not shown
    _write(runs / "anil-omniglot-20w1s" / "eval-nil-test.json", _ev(0.94, 42000, steps=0))
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in omniglot_table(runs)[2:]}
    assert rows["maml-omniglot-5w1s"][2].startswith("99.00") and rows["maml-omniglot-5w1s"][3].startswith("97.00")
    assert rows["fomaml-omniglot-5w1s"][3] == ""
    assert rows["nil-omniglot-20w1s"][2] == "94.00 ± 0.40 no inner loop (600 tasks)"
    assert "42000 (60000), stopped early" in rows["nil-omniglot-20w1s"][4]
    assert "95.39 non-transductive" in rows["reptile-omniglot-5w1s"][1]
    _write(runs / "reptile-omniglot-5w5s" / "status.json", {"status": "interrupted", "iteration": 300})
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in omniglot_table(runs)[2:]}
    assert rows["reptile-omniglot-5w5s"][2] == "trained 300 of 100000, not evaluated (the plan below)"
    assert rows["maml-omniglot-20w1s"][2] == "not run yet"


def test_the_mann_table_gives_the_accuracy_at_the_papers_instances_from_the_latest_evaluation(tmp_path):
    from tinymeta.experiment.report import mann_table
    runs = tmp_path / "runs"
    ev = _ev(0.80, 100000, steps=0, tasks=1000)
    ev["instance_accuracy"] = [{"mean": m, "ci95": 0.01, "std": 0.1, "n": 1000}
                               for m in (0.2, 0.7, 0.8, 0.85, 0.9, 0.91, 0.92, 0.93, 0.94, 0.955)]
    _write(runs / "mann-omniglot-5way" / "test.json", ev)
    _write(runs / "lstm-omniglot-5way" / "status.json", {"status": "time limit", "iteration": 1000})
    lines = mann_table(runs)
    assert all(line.count("|") == lines[0].count("|") for line in lines)       # every row has every column
    mann, lstm = lines[2].split(" | "), lines[4].split(" | ")
    assert mann[0] == "| mann-omniglot-5way" and mann[2:8] == ["20.0 ± 1.0", "70.0 ± 1.0", "80.0 ± 1.0", "90.0 ± 1.0", "95.5 ± 1.0", "80.0 ± 0.4"]
    assert mann[8:10] == ["1000", "100000 (100000)"]                             # 1st, 2nd, 3rd, 5th, 10th; all steps
    assert lstm[2] == "trained 1000 of 100000, not evaluated"
    _write(runs / "lstm-omniglot-5way" / "eval-test.json", {**ev, "iteration": 1000})
    assert mann_table(runs)[4].split(" | ")[9] == "1000 (100000), stopped early"
    assert lines[3].split(" | ")[2] == "not run yet"
    # a run finished under an older, shorter plan than its preset's (the MANN presets' 6,250 updates)
    old = runs / "mann-add-omniglot-5way"
    _write(old / "config.json", {"iterations": 6250})
    _write(old / "test.json", {**ev, "iteration": 6250})
    row = next(r for r in mann_table(runs) if r.startswith("| mann-add-omniglot-5way |")).split(" | ")
    assert row[9] == "6250 (100000), stopped early"

    def long_row():
        return next(r for r in mann_table(runs) if r.startswith("| mann-add-omniglot-5way-long |")).split(" | ")
    long = runs / "mann-add-omniglot-5way-long"  # that run, continued from its checkpoint
    _write(long / "config.json", {"iterations": 25000})
    _write(long / "status.json", {"status": "time limit", "iteration": 9000})
    assert long_row()[2] == "trained 9000 of 25000, not evaluated"
    _write(long / "eval-test.json", {**ev, "iteration": 16000})
    assert long_row()[9] == "16000 (100000), stopped early" and long_row()[2] == "20.0 ± 1.0"
    _write(long / "config.json", {"iterations": 150000})            # planned past the preset's length
    assert long_row()[9] == "16000 (100000), of 150000 planned"
    _write(long / "test.json", {**ev, "iteration": 150000})
    assert long_row()[9] == "150000 (100000)"


def test_the_mann_plan_prices_the_runs_that_go_on_to_their_presets_length(tmp_path):
    from tinymeta.experiment.report import MANN_PLAN, cost_plan
    runs, bench = tmp_path / "runs", tmp_path / "bench.json"
    _write(bench, {"device": "cpu", "threads": "1", "machine": "x86_64, 2 cores", "date": "2026-12-07",
                   "groups": {"algorithms": [{"preset": "mann-omniglot-5way", "value": 126.0},
                                             {"preset": "lstm-omniglot-5way", "value": 36.0}]}})
    _write(runs / "mann-omniglot-5way" / "status.json", {"status": "finished", "iteration": 6250})
    _write(runs / "mann-add-omniglot-5way-long" / "status.json", {"status": "finished", "iteration": 100000})
    lines = cost_plan(runs, bench, MANN_PLAN, "run")
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in lines[4:]}
    assert list(rows) == ["lstm-omniglot-5way", "mann-omniglot-5way"]       # cheapest first; the finished one gone
    assert rows["lstm-omniglot-5way"][1:3] == ["0 of 100000", "100000"] and rows["lstm-omniglot-5way"][5] == "1.0 |"
    assert rows["mann-omniglot-5way"][1:4] == ["6250 of 100000", "93750", "0.13"]
    assert rows["mann-omniglot-5way"][5] == "3.3 |"                               # 93,750 x 0.126 s
    assert lines[2].startswith("| run | trained |")


def test_the_seed_spread_lists_each_seed_and_gives_mean_and_sample_deviation_once_two_have_finished(tmp_path):
    """Each seed's row, transductive after 1 and 10 steps and non-transductive where evaluated at the same
    iteration; the mean and deviation over the finished seeds, of the non-transductive figures too once two
    finished seeds have one."""
    from tinymeta.experiment.report import seed_lines
    runs = tmp_path / "runs"
    _write(runs / "maml-omniglot-5w1s" / "test.json", _ev(0.99, 60000))
    _write(runs / "maml-omniglot-5w1s-seed1" / "status.json", {"status": "time limit", "iteration": 2000})
    lines = seed_lines(runs)
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in lines[2:5]}
    assert rows["maml-omniglot-5w1s"][1:7] == ["0", "60000 (60000)", "99.00 ± 0.40", "99.00 ± 0.40 (600 tasks)", "",
                                               "cpu |"]
    assert rows["maml-omniglot-5w1s-seed1"][1:3] == ["1", "trained 2000 of 60000, not evaluated"]
    assert rows["maml-omniglot-5w1s-seed2"][1:3] == ["2", "not run yet"]
    assert lines[-1].startswith("Fewer than two seeds have finished 60000 iterations: no spread yet.")
    _write(runs / "maml-omniglot-5w1s-seed1" / "eval-test.json", _ev(0.97, 30000))      # stopped early: not counted
    assert "30000 (60000), stopped early" in seed_lines(runs)[3] and seed_lines(runs)[-1].startswith("Fewer")
    _write(runs / "maml-omniglot-5w1s-seed1" / "test.json", _ev(0.98, 60000))
    _write(runs / "maml-omniglot-5w1s-seed2" / "test.json", _ev(0.985, 60000))
    _write(runs / "maml-omniglot-5w1s-seed2" / "config.json", {"seed": 7})              # the seed its config says
    lines = seed_lines(runs)
    assert lines[4].split(" | ")[1] == "7"
    # 99.0, 98.0, 98.5: mean 98.50, sample standard deviation 0.50
    assert lines[-1].startswith("Over the 3 seeds that finished, after 10 steps: mean 98.50%, standard deviation "
                                "0.50 points (sample, n - 1), against")
    _write(runs / "maml-omniglot-5w1s" / "eval-test-nontransductive.json", _ev(0.96, 60000))
    _write(runs / "maml-omniglot-5w1s-seed1" / "eval-test-nontransductive.json", _ev(0.95, 50000))  # another iteration
    lines = seed_lines(runs)
    assert lines[2].split(" | ")[5] == "96.00 ± 0.40" and lines[3].split(" | ")[5] == ""
    assert "non-transductive" not in lines[-1].split("(sample, n - 1)")[1].split("against")[0]   # one is not a spread
    _write(runs / "maml-omniglot-5w1s-seed1" / "eval-test-nontransductive.json", _ev(0.95, 60000))
    # 96.0, 95.0: mean 95.50, sample standard deviation 0.71
    assert "(sample, n - 1); non-transductive, over the 2 evaluated so: mean 95.50%, standard deviation 0.71, " \
           "against" in seed_lines(runs)[-1]


def test_the_plan_prices_the_seed_runs_at_the_flagship_s_rate(tmp_path):
    runs = tmp_path / "runs"
    _write(runs / "maml-omniglot-5w1s-seed1" / "status.json", {"status": "time limit", "iteration": 24000})
    bench = tmp_path / "bench.json"
    _write(bench, {"device": "cpu", "threads": "1", "machine": "x86_64, 2 cores", "date": "2026-12-07",
                   "groups": {"algorithms": [{"name": "x", "preset": "maml-omniglot-5w1s", "value": 500.0}]}})
    table = [line for line in omniglot_plan(runs, bench) if "-seed" in line]
    assert table == ["| maml-omniglot-5w1s-seed1 | 24000 of 60000 | 36000 | 0.50 |  | 5.0 |",
                     "| maml-omniglot-5w1s-seed2 | 0 of 60000 | 60000 | 0.50 |  | 8.3 |"]


def test_runs_shows_the_evaluation_of_a_run_stopped_part_way_and_the_later_of_two(tmp_path):
    import shutil
    from pathlib import Path

    from tinymeta.experiment.runs import run_summary
    committed = Path(__file__).resolve().parents[1] / "results" / "runs" / "maml-sine-5shot"
    run = tmp_path / "run"
    shutil.copytree(committed, run, ignore=shutil.ignore_patterns("*.png", "eval-*"))
    final = json.loads((run / "test.json").read_text())
    (run / "test.json").unlink()
    assert run_summary(run)["test"] == "-"
    part = {**final, "iteration": 30000, "loss": [{"mean": 0.5, "ci95": 0.05}] * len(final["loss"])}
    _write(run / "eval-test.json", part)
    assert run_summary(run)["test"] == "0.5000 ± 0.0500 (at 30000)"          # partial: says where it stands
    _write(run / "test.json", final)                                          # finished later: the final test wins
    row = run_summary(run)
    assert row["test"] == f"{final['loss'][-1]['mean']:.4f} ± {final['loss'][-1]['ci95']:.4f}"
    _write(run / "eval-test.json", {**part, "iteration": final["iteration"] + 10})   # resumed past it, evaluated
    assert run_summary(run)["test"].endswith(f"(at {final['iteration'] + 10})")

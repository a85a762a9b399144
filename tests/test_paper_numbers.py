"""The paper numbers of TAML, MANN and MAML++ (issue 27): what `presets --json` shows of them, marked unverified
where the paper's table could not be read, and their rows on the results page, built from temporary folders."""
import json
import os
import subprocess
import sys
from pathlib import Path

from tinymeta.experiment.presets import PAPER_MANN_TABLE1, PRESETS
from tinymeta.experiment.report import CPU_PAPER, OMNIGLOT_CELLS, OMNIGLOT_PAPER, omniglot_plan, omniglot_table

REPO = Path(__file__).resolve().parents[1]
ISSUE27_CELLS = ("taml-entropy-omniglot-5w1s", "taml-theil-omniglot-5w1s", "mamlpp-omniglot-5w1s",
                 "mamlpp-omniglot-20w1s", "mamlpp-omniglot-20w5s")


def _presets_json() -> dict:
    """`python -m tinymeta presets --json` as a user types it, one row per preset by name."""
    out = subprocess.run([sys.executable, "-m", "tinymeta", "presets", "--json"], cwd=REPO, capture_output=True,
                         text=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"}, check=True).stdout
    return {row["name"]: row for row in map(json.loads, out.splitlines())}


def test_presets_json_shows_each_papers_figures_and_says_which_are_unverified():
    rows = _presets_json()
    for name in ("taml-entropy-omniglot-5w1s", "taml-theil-omniglot-5w1s"):
        src = rows[name]["source"]
        assert "1805.07722" in src["paper"] and "UNVERIFIED" in src["paper"] and src["paper_value"] is None
        assert "UNVERIFIED" in src["settings"]["taml_lambda"] and "1.0" in src["settings"]["taml_lambda"]
        assert "UNVERIFIED" in src["settings"]["algorithm"] and "meta-batch" in src["settings"]["algorithm"]
        assert rows[name]["config"]["taml_lambda"] == 1.0   # tinymeta's choice until the paper's is read
    quoted = {"mamlpp-omniglot-5w1s": "99.47", "mamlpp-omniglot-20w1s": "97.65", "mamlpp-omniglot-20w5s": "99.33"}
    for name, value in quoted.items():
        src = rows[name]["source"]
        assert src["paper_value"] == value and "UNVERIFIED" in src["paper"] and "3 seeds" in src["paper"]
        assert "issue #20" in src["settings"]["seed"] and "_{0,1,2}_few_shot.sh" in src["settings"]["seed"]
    five = rows["mamlpp-omniglot-5w5s"]["source"]["paper_value"]
    assert "99.85" in five and "99.93" in five and "disagree" in five   # the two quotes of 5-way 5-shot
    for name, row in (("mann-omniglot-5way", "mann"), ("lstm-omniglot-5way", "lstm")):
        src = rows[name]["source"]
        assert "Table 1" in src["paper"] and "UNVERIFIED" in src["paper"] and "4th-instance" in src["paper"]
        for k, v in PAPER_MANN_TABLE1[row].items():
            assert f"instance {k} {v}%" in src["paper_value"]
    assert PAPER_MANN_TABLE1["mann"][2] == 82.8 and PAPER_MANN_TABLE1["lstm"][10] == 62.5


def test_the_omniglot_table_has_a_row_for_each_issue_27_cell_without_an_unread_number(tmp_path):
    """Nothing trained yet: each row says "not run yet", and its paper column says why no figure is given
    (REFERENCE.md: a paper's table is read before its number goes on RESULTS.md)."""
    rows = {line.split(" | ")[0][2:]: line for line in omniglot_table(tmp_path / "runs")[2:]}
    for name in ISSUE27_CELLS:
        assert name in rows and "not run yet" in rows[name], name
        assert "unverified, the paper's table could not be read" in rows[name]
        assert "None" not in rows[name] and "99.47" not in rows[name] and "97.65" not in rows[name]
    assert "TAML" in rows["taml-theil-omniglot-5w1s"] and "MAML++" in rows["mamlpp-omniglot-20w5s"]
    assert rows["maml-omniglot-5w1s"].startswith("| maml-omniglot-5w1s | 98.7 (MAML, Table 1) |")  # others as before


def test_the_plan_lists_the_new_cells_and_says_which_have_no_benchmark(tmp_path):
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"device": "cpu", "threads": "1", "machine": "x86_64, 2 cores", "date": "2026-12-06",
                                 "groups": {"algorithms": [{"name": "x", "preset": "mamlpp-omniglot-5w1s",
                                                            "value": 900.0, "unit": "ms"},
                                                           {"name": "y", "preset": "mamlpp-omniglot-20w5s",
                                                            "note": "out of memory: ..."}]}}))
    committed = REPO / "results" / "bench-cpu.json"
    committed_ms = {r["preset"]: r["value"] for rows in json.loads(committed.read_text())["groups"].values()
                    for r in rows if "value" in r}
    for bench_file, ms in ((bench, {"mamlpp-omniglot-5w1s": 900.0}), (tmp_path / "absent.json", {}),
                           (committed, committed_ms)):
        table = {line.split(" | ")[0][2:]: line for line in omniglot_plan(tmp_path / "runs", bench_file)
                 if line.startswith("| ") and "-omniglot-" in line}
        for name in ISSUE27_CELLS:
            total = PRESETS[name].iterations
            expected = (f"| {name} | 0 of {total} | {total} | {ms[name] / 1e3:.2f} |  | "
                        f"{ms[name] / 1e3 * total / 3600:.1f} |" if name in ms
                        else f"| {name} | 0 of {total} | {total} | not measured |  |  |")  # a row without a value too
            assert table[name] == expected, (bench_file.name, table[name])
    assert table["mamlpp-omniglot-5w1s"] == "| mamlpp-omniglot-5w1s | 0 of 50000 | 50000 | 1.82 |  | 25.3 |"  # 1821.7 ms


def test_the_gpu_list_runs_mamlpp_20_way_and_the_cpu_cells_stay_off_it():
    text = (REPO / "results" / "gpu.sh").read_text()
    block = text.split("PRESETS=(")[1].split(")")[0].split()
    assert block[-2:] == ["mamlpp-omniglot-20w1s", "mamlpp-omniglot-20w5s"]
    assert not set(CPU_PAPER) & set(block) and not set(CPU_PAPER) & set(OMNIGLOT_PAPER)
    assert set(CPU_PAPER) <= set(OMNIGLOT_CELLS) and all(name in PRESETS for name in CPU_PAPER)


def test_protocols_md_says_which_figures_are_unverified_and_what_the_mamlpp_interval_is():
    text = (REPO / "PROTOCOLS.md").read_text()
    taml = text.split("## TAML on Omniglot")[1].split("\n## ")[0]
    mann = text.split("## MANN and its LSTM baseline")[1].split("\n## ")[0]
    mamlpp = text.split("## MAML++ on Omniglot")[1].split("\n## ")[0]
    assert "UNVERIFIED" in taml and "lambda" in taml and "meta-batch" in taml and "PAPER_UNREAD" in taml
    assert "UNVERIFIED" in mann and "4th-instance" in mann
    assert "UNVERIFIED" in mamlpp and "issue #20" in mamlpp and "99.85" in mamlpp and "`results/gpu.sh`" in mamlpp

"""The documentation's promises that need no model run: the README stays a short guide whose
install and test commands are the ones CI runs, its results table agrees with the benchmark
pages, the benchmark tables that have a JSON file behind them in data/benchmarks/ show that
file's figures, and the command-line reference is rendered from the console script's parsers.

(The examples and command lines of every page run in tests/test_readme.py; the tables that a
model run reproduces are checked where that run is: tests/test_evaluate.py, test_export.py.)
"""

from __future__ import annotations

import importlib.util
import json
import re

import numpy as np
import pytest
from conftest import ROOT, doc_table, markdown_table

from trajpred.cli import COMMANDS, build_parser

CALIBRATION_JSON = ROOT / "data/benchmarks/calibration_2026-12-06/calibration_benchmark.json"
EVENTS_JSON = ROOT / "data/benchmarks/events_2026-12-06/events_benchmark.json"
GPU_RUN = ROOT / "data/benchmarks/gpu_h200_2026-11-27"
ARMS = ("uncalibrated", "fixed", "online")


def readme() -> str:
    return (ROOT / "README.md").read_text()


def shell_block(section: str) -> list[str]:
    """The command lines of the README's ```bash block under `## section`."""
    body = readme().split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```bash\n(.*?)```", body, flags=re.S).group(1)
    return [line.strip() for line in code.splitlines() if line.strip()]


def test_readme_is_a_short_guide():
    lines = readme().splitlines()
    assert len(lines) <= 250
    assert "docs/assets/annotated_frame.png" in readme()
    assert (ROOT / "docs/assets/annotated_frame.png").stat().st_size < 300_000
    for section in ("Install", "Test", "Python API", "Results", "Documentation"):
        assert f"\n## {section}\n" in readme(), section


def test_ci_installs_and_tests_as_the_readme_says():
    """.ci/run runs, in order, every command of the README's Install (but the virtual
    environment, which it makes itself) and Test blocks, `&&` chains split."""
    ci = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    install = [c for c in shell_block("Install") if not c.startswith("python3 -m venv")]
    steps = [s.strip() for c in install + shell_block("Test") for s in c.split("&&")]
    assert steps == [line for line in ci if line in steps]
    assert 'pip install -e ".[dev]"' in steps and "mkdocs build --strict" in steps


def test_readme_results_agree_with_the_benchmark_pages():
    rows = markdown_table(readme(), "| benchmark | result | page |")
    eth = doc_table("| scene | windows | ADE |")["avg"]
    (cell,) = [r["result"] for name, r in rows.items() if name.startswith("ETH/UCY")]
    for column in ("ADE", "FDE", "CV ADE", "CV FDE", "minADE20", "minFDE20"):
        assert eth[column] in cell, column
    int8 = doc_table("| scene | ADE fp32 | ADE int8 |")["avg"]
    (cell,) = [r["result"] for name, r in rows.items() if name.startswith("int8")]
    assert f"ADE {int8['ADE int8']} / FDE {int8['FDE int8']}" in cell
    report = json.loads(CALIBRATION_JSON.read_text())
    cov = [report["eth_ucy"][s]["online"] for s in report["eth_ucy"]]
    (cell,) = [r["result"] for name, r in rows.items() if name.startswith("`r50` / `r90`")]
    low50, high50 = (round(100 * f([c["cov50"] for c in cov])) for f in (min, max))
    low90, high90 = (round(100 * f([c["cov90"] for c in cov])) for f in (min, max))
    assert cell.startswith(f"{low50}-{high50} % / {low90}-{high90} %"), cell


def percent(r50_r90: dict) -> str:
    return f"{100 * r50_r90['cov50']:.0f} / {100 * r50_r90['cov90']:.0f} %"


def worst_step(arm: dict) -> str:
    if "cov50_per_step" not in arm:
        return "-"
    off = [np.abs(np.array(arm[f"cov{p}_per_step"]) - p / 100).max() for p in (50, 90)]
    return f"{100 * off[0]:.0f} / {100 * off[1]:.0f} points"


CALIBRATION_SETS = {
    "eth_ucy": "ETH/UCY held out: {}",
    "annotated_tracks": "real annotated tracks (MOTChallenge): {}",
    "synthetic_video": "tracked synthetic video: {}",
    "real_clips": "real clip, COCO detector: {}",
}


def test_calibration_tables_show_the_kept_benchmark_run():
    """docs/benchmarks/calibration.md: every row and cell of the coverage table and of the
    NLL / KDE-NLL table, from the JSON that scripts/calibration_benchmark.py wrote."""
    report = json.loads(CALIBRATION_JSON.read_text())
    expected = {}
    for kind, label in CALIBRATION_SETS.items():
        for name, arms in report[kind].items():
            rows = [(label.format(name), {a: arms[a] for a in ARMS})]
            if "truth" in arms["online"]:
                truth = {a: arms[a]["truth"] for a in ARMS}
                rows.append((label.format(name) + ", against the exact truth", truth))
            for row, by_arm in rows:
                first = by_arm["online"]
                expected[row] = [
                    str(first.get("windows", first.get("forecasts"))),
                    *(percent(by_arm[a]) for a in ARMS),
                    worst_step(by_arm["online"]),
                ]
    table = doc_table("| data | windows or forecasts |")
    shown = {row: list(cells.values())[1:] for row, cells in table.items()}
    assert shown == expected

    table = doc_table("| scene | NLL uncalibrated |")
    assert list(table) == list(report["eth_ucy"])
    for scene, arms in report["eth_ucy"].items():
        values = [arms[a]["nll"] for a in ARMS] + [arms[a]["kde_nll"] for a in ARMS]
        values += [arms["online"]["cv_nll"], arms["online"]["cv_kde_nll"]]
        assert list(table[scene].values())[1:] == [f"{v:.2f}" for v in values], scene


def test_events_tables_show_the_kept_benchmark_run():
    """docs/benchmarks/events.md: both tables are what scripts/events_benchmark.py prints of
    the JSON kept beside it, row for row and cell for cell, and so are the speed figures."""
    spec = importlib.util.spec_from_file_location(
        "events_benchmark", ROOT / "scripts/events_benchmark.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    report = json.loads(EVENTS_JSON.read_text())
    page = (ROOT / "docs/benchmarks/events.md").read_text()
    for header, rows in (
        (script.SCENE_HEADER, script.scene_rows(report)),
        (script.KIND_HEADER, script.kind_rows(report)),
    ):
        assert script.markdown(header, rows) in page
    assert script.goals(report) in page
    for clip, r in report["speed"].items():
        assert f"| {clip} | {r['targets']} | {r['ratio_median']:.3f} |" in page, clip
    assert f"{report['fifty_tracks']['ms_per_frame']:.1f} ms" in page


def test_gpu_table_shows_the_kept_gpu_run():
    """docs/benchmarks/speed.md's GPU table: per-round ratios, medians and bare fps of the JSON
    that scripts/gpu_check.sh kept (each figure within its printed rounding), and the training
    throughput."""
    table = doc_table("| detector precision, torch threads |")
    runs = {"fp32, 16": "bench_fp32", "fp16 (`--half`), 16": "bench_fp16"}
    runs |= {"fp32, 4 (`OMP_NUM_THREADS`, 300 frames)": "bench_fp32_omp4"}
    runs |= {"fp32, 2 (`OMP_NUM_THREADS`, 300 frames)": "bench_fp32_omp2"}
    assert set(table) == set(runs)
    for row, name in runs.items():
        rounds = json.loads((GPU_RUN / f"{name}.json").read_text())["rounds"]
        cells = list(table[row].values())
        fps = [r["yolo_track"]["fps"] for r in rounds]
        assert cells[1] == f"{min(fps):.0f}-{max(fps):.0f}", row
        for column, key in ((2, "pipeline_vs_yolo_track"), (4, "no_video_vs_yolo_track")):
            shown = [float(v) for v in cells[column].split(", ")]
            np.testing.assert_allclose(shown, [r[key] for r in rounds], atol=0.005 + 1e-9)
        median = np.median([r["pipeline_vs_yolo_track"] for r in rounds])
        assert float(cells[3].strip("*")) == pytest.approx(median, abs=0.005 + 1e-9), row
    training = json.loads((GPU_RUN / "bench_training.json").read_text())
    speed = (ROOT / "docs/benchmarks/speed.md").read_text()
    assert f"**{training['windows_per_s'] / 1000:.0f} k\n  windows/s**" in speed


def test_cli_reference_is_the_parsers_help(monkeypatch):
    """docs/hooks.py renders `trajpred --help` and every `trajpred COMMAND --help`, as the
    console script prints them at the same width, into the page that holds its marker."""
    monkeypatch.setenv("COLUMNS", "100")
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs/hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    page = (ROOT / "docs/reference/cli.md").read_text()
    assert hooks.MARKER in page
    rendered = hooks.on_page_markdown(page, None, None, None)
    parser = build_parser()
    assert parser.format_help().rstrip() in rendered
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    for name in COMMANDS:
        assert f"## trajpred {name}\n" in rendered
        assert subparsers[name].format_help().rstrip() in rendered, name


def test_every_page_is_in_the_navigation():
    """mkdocs.yml's nav lists every page of docs/ (mkdocs --strict also refuses one left out)."""
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in (ROOT / "docs").rglob("*.md"):
        assert f": {page.relative_to(ROOT / 'docs').as_posix()}\n" in nav, page


def test_every_readme_result_is_on_its_page():
    """Each decimal figure of the README's results table is printed on the page its row links
    to, where the figure's command and its test (if any) are."""
    rows = markdown_table(readme(), "| benchmark | result | page |")
    assert len(rows) >= 6
    for name, row in rows.items():
        link = re.fullmatch(r"\[.*\]\((docs/[^)#]+)(#[^)]*)?\)", row["page"])
        assert link, row["page"]
        page = (ROOT / link.group(1)).read_text()
        for figure in re.findall(r"\d+\.\d+", row["result"]):
            assert re.search(rf"(?<![\d.]){re.escape(figure)}(?![\d])", page), (name, figure)

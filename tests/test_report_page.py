"""The report page as a reader first sees it, in headless Chromium at 1280 x 900: the answer (headline
and its numbers) and a figure on the first screen, nothing wider than the window, every image loaded,
no figure inked to its edge, the settings folded; for a quick-study-shaped report (one condition, 10 seeds,
three test modes) and for 8 models x 100 seeds. The runs are synthetic (analysis only, no MLflow): the
page is what is tested. Figures at 1 to 30 conditions keep a white margin on every side."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from ui_process import chromium_or_skip, headless_chromium

from seedvar.analysis import figures, render
from seedvar.analysis.load import LoadedRun, StudyRuns
from seedvar.analysis.report import build_sections
from seedvar.results import Predictions

WIDTH, HEIGHT = 1280, 900
EDGE = 2  # pixels of a figure's border that must be background


def synthetic_study(models: int, seeds: int, samples: int, passes: int, name: str) -> StudyRuns:
    """Trained models whose eval passes repeat and whose train-mode (= MC-dropout) passes differ, around an
    error rate per model: every section of a one-dataset study has something to show."""
    rng = np.random.default_rng(37)
    labels = rng.integers(0, 8, samples).astype(np.int16)

    def noisy(error: float, k: int) -> np.ndarray:
        wrong = rng.random((k, samples)) < error
        return np.where(wrong, (labels + 1) % 8, labels).astype(np.int8)

    runs = []
    for m in range(models):
        model = "hybridsn" if models == 1 else f"model{m}"
        for r in range(seeds):
            error = 0.1 + 0.01 * m + rng.normal(0, 0.005)
            train = noisy(error + 0.02, passes)
            runs.append(
                LoadedRun(
                    run_id=f"{model}-{r}",
                    name=f"{model}-r{r:03d}",
                    status="FINISHED",
                    model=model,
                    deterministic=True,
                    varied="all",
                    replicate=r,
                    config_hash=f"{model}-{r}",
                    params={"model": model, "seed.init": str(r), "train.epochs": "40"},
                    metrics={"time.total_seconds": 10.0},
                    predictions=Predictions(
                        labels=labels,
                        passes={
                            "eval": np.repeat(noisy(error, 1), 2, 0),
                            "train": train,
                            "mc_dropout": train,
                        },
                        pass_seeds={
                            "eval": np.arange(2),
                            "train": np.arange(passes),
                            "mc_dropout": np.arange(passes),
                        },
                        ids=np.arange(samples),
                        class_names=[f"c{i}" for i in range(8)],
                    ),
                    curves={
                        "loss": [(e, 1.0 / e) for e in range(1, 6)],
                        "acc": [(e, 0.15 * e) for e in range(1, 6)],
                    },
                )
            )
    return StudyRuns(name, runs, sweeps=1)


def write_report(study: StudyRuns, out: Path) -> Path:
    render.write(out, f"seedvar report: {study.experiment}", build_sections(study), ["html", "md"])
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless Chromium for the module, its viewport exactly 1280 x 900 CSS pixels."""
    browser_path, driver_path = chromium_or_skip()
    driver = headless_chromium(
        browser_path, driver_path, tmp_path_factory.mktemp("profile"), f"{WIDTH},{HEIGHT}"
    )
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
    )
    yield driver
    driver.quit()


# What the first screen holds, read in one go: rectangles are relative to the top of the page.
LAYOUT = """
const top = e => e ? Math.round(e.getBoundingClientRect().top + window.scrollY) : null;
const imgs = [...document.images];
const settings = document.getElementById('table-settings');
return {
  innerWidth: window.innerWidth, innerHeight: window.innerHeight,
  scrollWidth: document.documentElement.scrollWidth,
  headline: top(document.querySelector('p.headline')),
  bullets: [...document.querySelectorAll('section.glance li')].map(li => [top(li), li.innerText]),
  links: [...document.querySelectorAll('section.glance a')].map(a => a.getAttribute('href')),
  firstFigure: imgs.length ? top(imgs[0]) : null,
  unloaded: imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt),
  alts: imgs.map(i => i.alt),
  settingsShown: settings ? settings.checkVisibility() && !settings.closest('details:not([open])') : null,
  settingsTop: top(settings),
  conditionsTop: top(document.getElementById('table-conditions')),
};
"""


def check_page(driver, out: Path) -> dict:
    """The checks of the first screen; returns the layout for the caller's own checks."""
    driver.get((out / "index.html").as_uri())
    page = driver.execute_script(LAYOUT)
    assert (page["innerWidth"], page["innerHeight"]) == (WIDTH, HEIGHT)
    assert page["headline"] is not None and page["headline"] < HEIGHT, page
    assert 1 <= len(page["bullets"]) <= 4 and all(y < HEIGHT for y, _ in page["bullets"]), page["bullets"]
    assert all("95% CI" in text for _, text in page["bullets"]), page["bullets"]  # a number with its interval
    assert page["firstFigure"] is not None and page["firstFigure"] < HEIGHT, page
    assert page["scrollWidth"] <= page["innerWidth"], f"the page overflows: {page['scrollWidth']} px"
    assert not page["unloaded"], f"images not loaded: {page['unloaded']}"
    assert all(len(alt.split()) >= 5 for alt in page["alts"]), page["alts"]  # says what it shows
    # the settings are one click away: folded, or below the first figure
    assert page["settingsShown"] in (False, None) or page["settingsTop"] > page["firstFigure"]
    for link in page["links"]:  # every number of the answer leads to its table
        assert driver.execute_script(f"return document.getElementById('{link[1:]}') !== null"), link
    for png in (out / "figures").glob("*.png"):
        assert_white_margin(Image.open(png), png.name)
    return page


def assert_white_margin(image: Image.Image, name: str) -> None:
    """No ink on the outer EDGE pixels: nothing is cut at the figure's border."""
    rgb = np.asarray(image.convert("RGB"))
    border = np.concatenate(
        [
            rgb[:EDGE].reshape(-1, 3),
            rgb[-EDGE:].reshape(-1, 3),
            rgb[:, :EDGE].reshape(-1, 3),
            rgb[:, -EDGE:].reshape(-1, 3),
        ]
    )
    assert (border == 255).all(), f"{name}: ink on its edge"


def test_a_quick_study_report_answers_on_the_first_screen(browser, tmp_path):
    out = write_report(synthetic_study(1, 10, 600, 6, "quick"), tmp_path / "quick")
    page = check_page(browser, out)
    assert page["settingsShown"] is False
    assert any("dropout's share of train-mode variance" in text for _, text in page["bullets"])
    # a link to a folded table opens its fold
    browser.get((out / "index.html").as_uri() + "#table-settings")
    assert browser.execute_script("return document.getElementById('table-settings').checkVisibility()")
    md = (out / "report.md").read_text()
    assert md.index("](#table-") < md.index("![") < md.index("## The answer")  # same order as the page


@pytest.mark.slow
def test_eight_models_of_100_seeds_still_answer_on_the_first_screen(browser, tmp_path):
    out = write_report(synthetic_study(8, 100, 400, 4, "many"), tmp_path / "many")
    page = check_page(browser, out)
    assert any(text.startswith("best, model0") for _, text in page["bullets"])
    assert page["conditionsTop"] < HEIGHT - 120  # the table of conditions' top rows too
    size = (out / "index.html").stat().st_size
    assert size < 400_000, size  # 0.63 MB before the palette PNGs, with one figure fewer


@pytest.mark.parametrize("n", [1, 8, pytest.param(30, marks=pytest.mark.slow)])
def test_figures_keep_a_white_margin_at_any_condition_count(n):
    """The answer's figure and the accuracy figure at 1, 8 and 30 conditions (long names included): every
    title and label inside the image, a white margin around it."""
    rng = np.random.default_rng(n)
    names = [f"condition-{i}-with-a-long-name" if i % 3 == 0 else f"c{i}" for i in range(n)]
    modes = ["eval", "train", "mc_dropout"]
    acc = [
        {"condition": c, "mode": m, "mean": 80 + rng.normal(), "ci_low": 79.0, "ci_high": 82.0}
        for c in names
        for m in modes
    ]
    accuracy = pd.DataFrame(acc)
    variance = pd.DataFrame(
        [
            {
                "condition": c,
                "mode": "train",
                "within": 1.0,
                "share_within": 40.0,
                "share_within_ci_low": 20.0,
                "share_within_ci_high": 60.0,
            }
            for c in names
        ]
    )
    passes = pd.DataFrame(
        [
            {"condition": c, "run": f"r{r}", "mode": m, "accuracy": 80 + rng.normal()}
            for c in names
            for r in range(3)
            for m in modes
        ]
    )
    for fig in (figures.intervals(accuracy, variance, names), figures.accuracy_distribution(passes)):
        image = Image.open(io.BytesIO(render.png(fig)))
        assert_white_margin(image, f"{n} conditions")
        assert render.alt_text(fig).count(";") >= 1
        plt.close(fig)


def test_a_metric_report_answers_on_the_first_screen_too(browser, tmp_path):
    """Runs seedvar did not train (a DataFrame of one metric, 5 seeds x 3 models): the same first screen."""
    from seedvar.analysis.report import MetricSource, build_report

    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        [
            {"model": m, "seed": s, "acc": 0.9 - 0.02 * i + rng.normal(0, 0.005)}
            for i, m in enumerate(["a", "b", "c"])
            for s in range(5)
        ]
    )
    built = build_report(None, metric=MetricSource("acc", by=("model",), frame=frame), out=tmp_path / "m")
    page = check_page(browser, built.folder)
    assert page["bullets"][0][1].startswith("best, a:")
    assert built.answer[0].startswith(
        "the DataFrame: 15 finished run(s)"
    )  # the long answer, one section down

"""The microscope's pieces: branch detection, the picture store's keys, an interrupted build, and the
second run of the command that renders nothing new."""

import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from inceptionkit import create_model
from inceptionkit.cli.main import app
from inceptionkit.files import TMP_PREFIX
from inceptionkit.microscope import PictureStore, SiteSettings, branches, build_site, default_layers, network_identity
from inceptionkit.microscope import site as site_module


def test_branches_of_googlenets_inception_3a_are_table_1s_columns():
    """GoogLeNet's Table 1, inception (3a): #1x1 64, #3x3 128, #5x5 32, pool proj 32, concatenated in that order."""
    torch.manual_seed(0)
    model = create_model("googlenet", aux_logits=False).eval()
    found = branches(model, "inception3a", torch.randn(1, 3, 96, 96))
    assert [(b.name, b.first, b.count) for b in found] == [
        ("branch1", 0, 64), ("branch2", 64, 128), ("branch3", 192, 32), ("branch4", 224, 32)]


def test_a_residual_block_and_a_convolution_have_no_branches():
    torch.manual_seed(0)
    model = create_model("inception_resnet_v1").eval()
    x = torch.randn(1, 3, 75, 75)
    assert branches(model, "block35_1", x) == []  # x + scale * conv(cat(branches)): not a concatenation
    assert branches(model, "conv2d_1a", x) == []


def test_default_layers_are_the_stage_ends_or_the_top_level_modules():
    x = torch.randn(1, 3, 64, 64)
    googlenet = create_model("googlenet", aux_logits=False).eval()
    assert default_layers(googlenet, x) == ["conv1", "conv3", "inception3b", "inception4e", "inception5b"]
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3),
                                torch.nn.Flatten(), torch.nn.LazyLinear(2)).eval()
    assert default_layers(plain, x) == ["0", "2"]  # weights and a feature map; not the classifier


def test_picture_names_follow_the_weights_and_the_settings(tmp_path):
    torch.manual_seed(0)
    a = create_model("googlenet_cifar", width=0.125)
    same = create_model("googlenet_cifar", width=0.125)
    same.load_state_dict(a.state_dict())
    assert network_identity(a) == network_identity(same)
    with torch.no_grad():
        same.fc.bias[0] += 1e-6  # one weight changed a little
    assert network_identity(a) != network_identity(same)
    store = PictureStore(tmp_path, network_identity(a))
    key = store.path("visualization", "inception3a", 0, {"steps": 8})
    assert key == store.path("visualization", "inception3a", 0, {"steps": 8})
    assert key != store.path("visualization", "inception3a", 1, {"steps": 8})
    assert key != store.path("visualization", "inception3a", 0, {"steps": 9})
    assert key != PictureStore(tmp_path, network_identity(same)).path("visualization", "inception3a", 0, {"steps": 8})


TINY = SiteSettings(channels=1, steps=4, k=2, images=1, dream_side=48, dream_octaves=1, dream_steps=1)


def test_an_interrupted_build_leaves_complete_pictures_and_the_next_run_makes_only_the_rest(digits_net, tmp_path,
                                                                                            monkeypatch):
    real = site_module._Builder.visualizations
    calls = []

    def failing(self, layer, channels):
        calls.append(layer)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the user presses Ctrl-C during the second layer's pictures
        return real(self, layer, channels)

    monkeypatch.setattr(site_module._Builder, "visualizations", failing)
    layers = ["inception3a", "inception4a"]
    with pytest.raises(KeyboardInterrupt):
        build_site(digits_net, tmp_path, layers=layers, settings=TINY)
    made = sorted((tmp_path / "img").iterdir())
    assert made and not [p for p in made if p.name.startswith(TMP_PREFIX)]
    for path in made:
        Image.open(path).load()  # complete files only
    assert not (tmp_path / "index.html").exists()  # no page claims a site that is not there
    monkeypatch.setattr(site_module._Builder, "visualizations", real)
    site = build_site(digits_net, tmp_path, layers=layers, settings=TINY)
    assert site.reused == len(made) and site.rendered > 0
    assert len(list((tmp_path / "img").iterdir())) == site.reused + site.rendered


def test_a_second_run_of_the_command_renders_nothing_and_takes_a_fraction_of_the_time(digits_run, tmp_path):
    args = ["microscope", str(digits_run), "-o", str(tmp_path / "site"), "--layers", "inception3a,inception4a",
            "--per-branch", "2", "--steps", "16", "--k", "3", "--max-images", "400", "--dream-side", "64"]
    start = time.perf_counter()
    first = CliRunner().invoke(app, args)
    first_s = time.perf_counter() - start
    assert first.exit_code == 0, first.output
    start = time.perf_counter()
    second = CliRunner().invoke(app, args)
    second_s = time.perf_counter() - start
    assert second.exit_code == 0, second.output
    made = len(list((tmp_path / "site" / "img").iterdir()))
    assert f"{made} pictures made, 0 reused" in first.output
    assert f"0 pictures made, {made} reused" in second.output
    assert second_s < first_s / 3, (first_s, second_s)
    more = CliRunner().invoke(app, [*args, "--per-branch", "3"])  # the last --per-branch counts
    assert more.exit_code == 0, more.output
    # one more channel in each of the 4 branches of both modules: its visualization and its examples
    assert f"16 pictures made, {made} reused" in more.output


def test_changed_input_images_are_rendered_again(digits_net, tmp_path):
    from tests.transfer.test_retrain import write_digits

    folder = write_digits(tmp_path / "images", (3, 8), limit=10)
    first = build_site(digits_net, tmp_path / "site", data=str(folder), layers=["inception3a"], settings=TINY)
    assert build_site(digits_net, tmp_path / "site", data=str(folder), layers=["inception3a"],
                      settings=TINY).rendered == 0
    victim = sorted(folder.rglob("*.png"))[-1]
    time.sleep(0.01)
    Image.open(victim).transpose(Image.FLIP_LEFT_RIGHT).save(victim)  # same name, other pixels
    again = build_site(digits_net, tmp_path / "site", data=str(folder), layers=["inception3a"], settings=TINY)
    assert 0 < again.rendered <= first.rendered


def test_a_layer_that_does_not_run_is_refused_by_name(tmp_path):
    torch.manual_seed(0)
    model = create_model("googlenet_cifar", width=0.125).eval()
    with pytest.raises(ValueError, match="fc_missing|no module"):
        build_site(model, tmp_path / "a", layers=["fc_missing"], settings=TINY)
    aux = create_model("googlenet", aux_logits=True, num_classes=10).eval()
    with pytest.raises(ValueError, match=r"aux1 did not run in the forward pass \(eval mode\)"):
        build_site(aux, tmp_path / "b", layers=["inception3a", "aux1"], settings=TINY)
    assert not (tmp_path / "b").exists()


def test_unknown_layers_and_a_file_as_the_site_are_refused_before_any_work(digits_run, tmp_path):
    bad = CliRunner().invoke(app, ["microscope", str(digits_run), "-o", str(tmp_path / "s"), "--layers", "inception9z"])
    assert bad.exit_code != 0 and "inception9z" in bad.output and not (tmp_path / "s" / "img").exists()
    (tmp_path / "f").write_text("x")
    taken = CliRunner().invoke(app, ["microscope", str(digits_run), "-o", str(tmp_path / "f")])
    assert taken.exit_code != 0 and "is a file" in taken.output


def test_no_link_of_an_interrupted_build_points_to_a_missing_page(digits_net, tmp_path, monkeypatch):
    """Ctrl-C during the third layer's pictures: a browser finds that every link on every page written
    resolves; the run after it links the pages to each other."""
    from urllib.parse import unquote, urlparse

    from selenium.webdriver.common.by import By

    from .test_tour import browser

    real = site_module._Builder.visualizations
    calls = []

    def failing(self, layer, channels):
        calls.append(layer)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, layer, channels)

    monkeypatch.setattr(site_module._Builder, "visualizations", failing)
    layers = ["inception3a", "inception3b", "inception4a"]
    with pytest.raises(KeyboardInterrupt):
        build_site(digits_net, tmp_path, layers=layers, settings=TINY)
    pages = sorted(tmp_path.rglob("*.html"))
    assert [p.name for p in pages] == ["inception3a.html", "inception3b.html"]
    driver = browser()
    try:
        followed = 0
        for page in pages:
            driver.get(page.resolve().as_uri())
            for anchor in driver.find_elements(By.TAG_NAME, "a"):
                target = Path(unquote(urlparse(anchor.get_attribute("href")).path))
                assert target.exists(), f"{page.name} links to {target}, which is missing"
                followed += 1
        assert followed >= 1  # inception3b's page links back to inception3a's
    finally:
        driver.quit()
    monkeypatch.setattr(site_module._Builder, "visualizations", real)
    build_site(digits_net, tmp_path, layers=layers, settings=TINY)
    first = (tmp_path / "layers" / "inception3a.html").read_text()
    assert 'href="inception3b.html"' in first and 'href="../index.html"' in first and "pending" not in first


def test_all_layers_are_the_stages_with_weights_and_the_command_takes_all(tmp_path):
    net = create_model("googlenet").eval()
    assert site_module.all_layers(net, torch.zeros(1, 3, 224, 224)) == [
        "conv1", "conv2", "conv3", "inception3a", "inception3b", "inception4a", "inception4b", "inception4c",
        "inception4d", "inception4e", "inception5a", "inception5b"]  # GoogLeNet's Table 1 rows with weights
    wrong = CliRunner().invoke(app, ["microscope", "googlenet:random", "-o", str(tmp_path / "s"), "--per-branch",
                                     "many", "--layers", "all"])
    assert wrong.exit_code == 2 and "--per-branch takes a number of channels or all, got 'many'" in wrong.output
    assert not (tmp_path / "s").exists()


def test_the_estimate_comes_before_any_picture_and_counts_what_is_missing(digits_net, tmp_path):
    plans = []

    def estimate(plan):
        if not plans:  # the first build: nothing rendered yet
            img = tmp_path / "site" / "img"
            assert not img.exists() or not any(img.iterdir())
        plans.append(plan)

    settings = SiteSettings(channels=2, steps=30, k=2, images=1, dream_side=48, dream_octaves=1, dream_steps=1)
    build_site(digits_net, tmp_path / "site", layers=["inception3a", "inception4a"], settings=settings,
               estimate=estimate)
    first = plans[-1]  # inception3a and 4a: 4 branches, 2 channels each
    assert (first.units, first.layers, first.steps, first.ranks) == (16, 2, 30, 1)
    per_channel = first.seconds_per_channel_step
    assert per_channel > 0 and first.seconds == pytest.approx(16 * 30 * per_channel)
    assert set(first.batches) == {"inception3a", "inception4a"} and all(1 <= n <= 8 for n in first.batches.values())
    assert first.describe().startswith("16 feature visualizations of 2 layers, 30 steps each: about")
    build_site(digits_net, tmp_path / "site", layers=["inception3a", "inception4a"], settings=settings,
               estimate=estimate)
    assert plans[-1].units == 0 and plans[-1].describe() == "every feature visualization is made already"

"""The run's history (CSV/JSON round trip, truncate) and its plots (confusion counts, PNG files)."""

import csv
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from inceptionkit.train.evaluate import confusion_matrix
from inceptionkit.train.history import History
from inceptionkit.train.plots import plot_confusion, plot_curves

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_history(epochs=4):
    h = History()
    for e in range(1, epochs + 1):
        h.append({"epoch": e, "train_loss": 2.0 / e + 0.1, "train_top1": 1 - 1 / (e + 1), "val_loss": 2.2 / e,
                  "val_top1": [0.3, 0.6, 0.55, 0.6][e - 1], "lr": 0.1 * 0.94 ** e})
    return h


# --- history -------------------------------------------------------------------------------------


def test_history_round_trips_csv_and_json(tmp_path):
    h = make_history()
    h.append({"epoch": 5, "train_loss": torch.tensor(1 / 3), "val_top5": np.float64(0.1 + 0.2), "note": None})
    h.save(tmp_path)
    assert History.load(tmp_path).rows == h.rows

    with open(tmp_path / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    # The header is the union of keys in first-seen order.
    assert header == ["epoch", "train_loss", "train_top1", "val_loss", "val_top1", "lr", "val_top5", "note"]
    assert [r["val_top5"] for r in rows] == ["", "", "", "", repr(0.1 + 0.2)]
    assert rows[4]["note"] == "" and rows[4]["val_loss"] == ""
    for row, csv_row in zip(h.rows, rows):  # floats written with repr(): exact after parsing
        for k, v in row.items():
            if isinstance(v, float):
                assert float(csv_row[k]) == v
    assert json.loads((tmp_path / "history.json").read_text())[4]["train_loss"] == torch.tensor(1 / 3).item()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]  # no temp files left


def test_missing_history_is_empty_and_a_broken_one_is_named(tmp_path):
    assert History.load(tmp_path).rows == []
    (tmp_path / "history.json").write_text('{"epoch": 1}')
    with pytest.raises(ValueError, match="history.json"):
        History.load(tmp_path)
    with pytest.raises(ValueError, match="epoch"):
        History().append({"train_loss": 1.0})


def test_truncate_and_rerun_epochs_replace_later_rows(tmp_path):
    h = make_history(4)
    h.truncate(2)
    assert [r["epoch"] for r in h.rows] == [1, 2]
    h = make_history(4)
    h.append({"epoch": 3, "val_top1": 0.9})  # a resumed run redoes epoch 3: rows 3 and 4 go
    assert [r["epoch"] for r in h.rows] == [1, 2, 3] and h.rows[-1] == {"epoch": 3, "val_top1": 0.9}


# --- plots ---------------------------------------------------------------------------------------


def test_confusion_matrix_by_hand_and_against_sklearn():
    targets = [0, 0, 1, 2, 2, 2]
    predictions = [0, 1, 1, 2, 0, 2]
    expected = torch.tensor([[1, 1, 0],
                             [0, 1, 0],
                             [1, 0, 2]])
    m = confusion_matrix(targets, predictions, 3)
    assert m.dtype == torch.int64 and torch.equal(m, expected)
    logits = torch.nn.functional.one_hot(torch.tensor(predictions), 3).float()
    assert torch.equal(confusion_matrix(torch.tensor(targets), logits, 3), expected)  # scores are argmaxed

    from sklearn.metrics import confusion_matrix as sk_confusion

    g = torch.Generator().manual_seed(0)
    t, p = torch.randint(0, 7, (500,), generator=g), torch.randint(0, 7, (500,), generator=g)
    assert np.array_equal(confusion_matrix(t, p, 7).numpy(), sk_confusion(t.numpy(), p.numpy(), labels=range(7)))
    with pytest.raises(ValueError, match="outside 0..2"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="3 targets but 2 predictions"):
        confusion_matrix([0, 1, 2], [0, 1], 3)


def assert_png(path, min_size=(100, 100)):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.size[0] >= min_size[0] and image.size[1] >= min_size[1]
    grey = np.asarray(image.convert("L"), dtype=np.float64)
    assert grey.std() > 5  # something was drawn, not a blank canvas
    return grey


def test_plots_write_valid_pngs(tmp_path):
    curves = plot_curves(make_history(), tmp_path / "plots" / "curves.png")
    assert curves == tmp_path / "plots" / "curves.png"
    assert_png(curves)
    single = plot_curves(make_history(1), tmp_path / "one.png")  # one epoch still draws its points
    assert_png(single)
    with pytest.raises(ValueError, match="empty"):
        plot_curves(History(), tmp_path / "none.png")

    m = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    classes = ["angry", "happy", "neutral"]
    normalized = assert_png(plot_confusion(m, classes, tmp_path / "confusion.png"))
    counts = assert_png(plot_confusion(m.numpy(), classes, tmp_path / "counts.png", normalize=False))
    assert not np.array_equal(normalized, counts)  # the annotations differ
    empty_row = torch.tensor([[2, 0], [0, 0]])  # a class with no examples must not divide by zero
    assert_png(plot_confusion(empty_row, ["a", "b"], tmp_path / "empty_row.png"))
    with pytest.raises(ValueError, match="does not fit 2 classes"):
        plot_confusion(m, ["a", "b"], tmp_path / "bad.png")
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_a_validation_spike_puts_the_loss_on_a_log_scale(tmp_path, monkeypatch):
    from inceptionkit.train import plots

    drawn = []
    monkeypatch.setattr(plots, "_save_png", lambda fig, path: drawn.append(fig))
    spiky = History()
    for epoch, (train, val) in enumerate([(1.9, 1.2), (0.6, 22.0), (0.3, 0.4), (0.15, 0.09)], start=1):
        spiky.append({"epoch": epoch, "train_loss": train, "val_loss": val, "train_top1": 0.5, "val_top1": 0.5})
    plot_curves(spiky, tmp_path / "spiky.png")
    plot_curves(make_history(), tmp_path / "calm.png")  # losses within 10x of each other: a linear axis
    (loss_axis, _), (calm_axis, _) = (fig.axes for fig in drawn)
    assert loss_axis.get_yscale() == "log" and loss_axis.get_title() == "loss (log scale)"
    assert calm_axis.get_yscale() == "linear" and calm_axis.get_title() == "loss"

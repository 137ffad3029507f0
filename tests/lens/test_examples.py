"""Dataset examples: equal to a brute-force sort, bounded memory, crops the receptive field's size."""

import tracemalloc
import weakref

import torch
from torch import nn

from inceptionkit.lens.examples import (
    Example,
    merge_examples,
    receptive_field,
    top_examples,
    top_examples_of_layers,
)


class Noise(torch.utils.data.Dataset):
    """``size`` random 1 x 16 x 16 images made on demand (item i is always the same)."""

    def __init__(self, size: int):
        self.size = size

    def __len__(self):
        return self.size

    def __getitem__(self, i):
        return torch.randn(1, 16, 16, generator=torch.Generator().manual_seed(i)), 0


def two_convs() -> nn.Module:
    """3x3 then 3x3 (stride 2): each unit sees 5x5 input pixels; the units step by 2."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2, padding=1)).eval()


def test_top_examples_equal_a_brute_force_sort_of_the_whole_data_set():
    model, data = two_convs(), Noise(150)
    with torch.no_grad():
        acts = torch.cat([model(torch.stack([data[i][0] for i in range(150)]))])
    for reduce, score in (("max", acts.flatten(2).amax(2)), ("mean", acts.flatten(2).mean(2))):
        found = top_examples(model, data, "2", [0, 3, 5], k=7, reduce=reduce, batch_size=32)
        for c in (0, 3, 5):
            order = sorted(range(150), key=lambda i: (-score[i, c].item(), i))[:7]
            assert [e.index for e in found[c]] == order
            assert torch.allclose(torch.tensor([e.score for e in found[c]]), score[order, c])


def test_several_layers_in_one_pass_equal_a_brute_force_sort_of_each(monkeypatch):
    model, data = two_convs(), Noise(120)
    with torch.no_grad():
        x = torch.stack([data[i][0] for i in range(120)])
        acts = {"0": model[:1](x), "1": model[:2](x), "2": model(x)}
    calls = []
    monkeypatch.setattr(Noise, "__getitem__", lambda self, i: calls.append(i) or (
        torch.randn(1, 16, 16, generator=torch.Generator().manual_seed(i)), 0))
    wanted = {"0": [3], "1": [1, 2], "2": [0, 5]}
    found = top_examples_of_layers(model, data, wanted, k=5, batch_size=32)
    assert sorted(calls) == list(range(120))  # each image read once for the three layers
    for layer, channels in wanted.items():
        score = acts[layer].flatten(2).amax(2)
        for c in channels:
            order = sorted(range(120), key=lambda i: (-score[i, c].item(), i))[:5]
            assert [e.index for e in found[layer][c]] == order
    assert found["1"][1][0].box[2:] == (3, 3) and found["2"][0][0].box[2:] == (5, 5)  # each layer's field


def test_shares_of_the_data_read_their_batches_only_and_merge_into_the_whole_pass(monkeypatch):
    """Three ranks' shares (every third batch of 16) of 100 images: each image read by one share, and the
    merged finds equal a brute-force sort; ties go to the lower index as in one pass."""
    model, data = two_convs(), Noise(100)
    with torch.no_grad():
        score = model(torch.stack([data[i][0] for i in range(100)])).flatten(2).amax(2)
    reads: dict[int, list[int]] = {}
    parts = []
    for rank in range(3):
        monkeypatch.setattr(Noise, "__getitem__", lambda self, i, rank=rank: reads.setdefault(rank, []).append(i)
                            or (torch.randn(1, 16, 16, generator=torch.Generator().manual_seed(i)), 0))
        parts.append(top_examples_of_layers(model, data, {"2": [0, 4]}, k=6, batch_size=16, share=(rank, 3)))
    assert reads[1] == list(range(16, 32)) + list(range(64, 80))  # batches 1 and 4
    assert sorted(i for indices in reads.values() for i in indices) == list(range(100))
    merged = merge_examples(parts, k=6)
    for c in (0, 4):
        order = sorted(range(100), key=lambda i: (-score[i, c].item(), i))[:6]
        assert [e.index for e in merged["2"][c]] == order
    tied = [{"2": {0: [Example(7, 1.0, (0, 0, 5, 5))]}}, {"2": {0: [Example(3, 1.0, (0, 0, 5, 5))]}}]
    assert [e.index for e in merge_examples(tied, k=2)["2"][0]] == [3, 7]


def test_crops_are_the_receptive_field_around_the_maximum():
    model = two_convs()
    field = receptive_field(model, "2", (1, 16, 16))
    assert field.box[2:] == (5, 5) and field.stride == (2.0, 2.0)  # 3x3 + 3x3/2: 5x5, by hand
    found = top_examples(model, Noise(20), "2", [1], k=3)
    assert all(e.box[2:] == (5, 5) for e in found[1])
    whole = top_examples(model, Noise(20), "2", [1], k=3, crop=False)
    assert all(e.box == (0, 0, 16, 16) for e in whole[1])


class CountingNoise(Noise):
    """Noise that counts how many of its images are alive at once."""

    def __init__(self, size: int):
        super().__init__(size)
        self.live = self.most = 0

    def __getitem__(self, i):
        x, label = super().__getitem__(i)
        self.live += 1
        self.most = max(self.most, self.live)
        weakref.finalize(x, self._gone)
        return x, label

    def _gone(self):
        self.live -= 1


def test_memory_does_not_grow_with_the_data_set():
    """8,000 images of 1 KB (8 MB): at most a batch of them alive at once, a few tens of KB of Python memory."""
    import gc

    model, data = two_convs(), CountingNoise(8000)
    gc.collect()
    tracemalloc.start()
    top_examples(model, data, "2", range(6), k=5, batch_size=50, crop=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert data.most <= 50 and data.live == 0
    assert peak < 8000 * 16 * 16 * 4 / 20, peak  # a twentieth of the data set, at most


def test_on_a_trained_network_the_best_digit_scores_above_the_rest(digits_net):
    from inceptionkit.data import load_data

    prep = digits_net.pretrained_cfg["preprocessing"]
    data = load_data("digits", (3, 32, 32), mean=prep["mean"], std=prep["std"], augment=False).test
    found = top_examples(digits_net, data, "inception4a", [0, 1], k=4)
    assert all(len(v) == 4 and v[0].score >= v[-1].score for v in found.values())
    assert all(1 <= e.box[2] <= 32 for v in found.values() for e in v)


def test_examples_of_an_early_layer_are_whole_images_with_the_units_view_outlined():
    from inceptionkit.lens.examples import CONTEXT_SIDE, OUTLINE, Example, example_crops

    images = torch.zeros(2, 1, 32, 32)
    images[1, :, 10:17, 4:11] = 1.0  # the 7x7 patch the unit saw
    dataset = [(image, 0) for image in images]
    found = {5: [Example(1, 2.0, (10, 4, 7, 7))]}
    whole = example_crops(dataset, found, [0.0], [1.0])[5][0]
    scale = round(CONTEXT_SIDE / 32)
    assert whole.shape == (3, 32 * scale, 32 * scale)
    assert torch.equal(whole[:, 10 * scale:17 * scale, 4 * scale:11 * scale], torch.ones(3, 7 * scale, 7 * scale))
    orange = torch.tensor(OUTLINE)
    assert torch.equal(whole[:, 10 * scale - 1, 4 * scale], orange)  # just above the box
    assert torch.equal(whole[:, 17 * scale, 11 * scale], orange)  # just below and right of it
    assert whole[:, 0, 0].sum() == 0  # the rest of the image as it was
    crop = example_crops(dataset, found, [0.0], [1.0], context="never")[5][0]
    assert torch.equal(crop, torch.ones(1, 7, 7))  # the patch alone

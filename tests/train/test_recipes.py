"""The recipes' arithmetic checked by hand: aux weighting, label smoothing, schedules, TF's RMSProp."""

import math

import pytest
import torch
from torch import nn

from inceptionkit.models import InceptionOutputs
from inceptionkit.train.optim import RMSpropTF
from inceptionkit.train.recipes import build_optimizer, build_scheduler, compute_loss, get_recipe, parameter_groups


def _ce(logits, target, smoothing=0.0):
    """Cross-entropy by hand: -sum_k q_k log p_k with q = (1 - e) one-hot + e / K."""
    total = 0.0
    for row, t in zip(logits.tolist(), target.tolist()):
        m = max(row)
        log_z = m + math.log(sum(math.exp(v - m) for v in row))
        k = len(row)
        q = [smoothing / k + (1 - smoothing) * (i == t) for i in range(k)]
        total += -sum(qi * (v - log_z) for qi, v in zip(q, row))
    return total / len(target)


def test_v1_aux_losses_weigh_0_3_each():
    torch.manual_seed(0)
    main, aux1, aux2 = torch.randn(4, 5), torch.randn(4, 5), torch.randn(4, 5)
    target = torch.tensor([0, 3, 4, 1])
    total, main_loss = compute_loss(get_recipe("v1"), InceptionOutputs(main, (aux1, aux2)), target)
    expected = _ce(main, target) + 0.3 * _ce(aux1, target) + 0.3 * _ce(aux2, target)
    assert total.item() == pytest.approx(expected, rel=1e-6)
    assert main_loss.item() == pytest.approx(_ce(main, target), rel=1e-6)
    plain, _ = compute_loss(get_recipe("v1"), main, target)  # eval-style output: no aux terms
    assert plain.item() == pytest.approx(_ce(main, target), rel=1e-6)


def test_v3_label_smoothing_0_1_and_aux_0_4():
    torch.manual_seed(1)
    main, aux = torch.randn(3, 10), torch.randn(3, 10)
    target = torch.tensor([2, 9, 0])
    total, main_loss = compute_loss(get_recipe("v3"), InceptionOutputs(main, (aux,)), target)
    assert main_loss.item() == pytest.approx(_ce(main, target, 0.1), rel=1e-6)
    assert total.item() == pytest.approx(_ce(main, target, 0.1) + 0.4 * _ce(aux, target, 0.1), rel=1e-6)


def test_v3_lr_at_epoch_k_is_0_045_times_0_94_to_k_over_2():
    recipe = get_recipe("v3")
    model = nn.Linear(2, 2)
    optimizer = build_optimizer(recipe, model)
    steps_per_epoch = 3
    scheduler = build_scheduler(recipe, optimizer, steps_per_epoch, epochs=10)
    for epoch in range(10):
        for _ in range(steps_per_epoch):
            assert optimizer.param_groups[0]["lr"] == pytest.approx(0.045 * 0.94 ** (epoch // 2))
            optimizer.step()
            scheduler.step()


def test_v1_lr_drops_4_percent_every_8_epochs():
    recipe = get_recipe("v1")
    optimizer = build_optimizer(recipe, nn.Linear(2, 2))
    scheduler = build_scheduler(recipe, optimizer, 1, epochs=20)
    lrs = []
    for _ in range(20):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[7] == pytest.approx(0.01) and lrs[8] == pytest.approx(0.0096) and lrs[16] == pytest.approx(0.009216)


def test_fast_schedule_warms_up_then_anneals():
    recipe = get_recipe("fast")
    optimizer = build_optimizer(recipe, nn.Linear(2, 2))
    scheduler = build_scheduler(recipe, optimizer, 10, epochs=4)
    lrs = []
    for _ in range(40):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(0.004) and max(lrs) == pytest.approx(0.1, rel=1e-3)
    assert lrs.index(max(lrs)) == 10 and lrs[-1] < 0.002


def test_weight_decay_only_on_kernels():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2))
    decay, no_decay = parameter_groups(model, 5e-4)
    assert [p.shape for p in decay["params"]] == [(4, 3, 3, 3), (2, 4)]
    assert len(no_decay["params"]) == 4 and no_decay["weight_decay"] == 0.0


def test_rmsprop_tf_two_steps_by_hand():
    """ms starts at 1; ms = 0.9 ms + 0.1 g^2; mom = 0.9 mom + lr g / sqrt(ms + 1); w -= mom."""
    w = nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = RMSpropTF([w], lr=0.045, decay=0.9, momentum=0.9, eps=1.0)
    grads = [torch.tensor([0.5, -1.0]), torch.tensor([2.0, 0.25])]
    ms, mom, expected = [1.0, 1.0], [0.0, 0.0], [1.0, -2.0]
    for g in grads:
        w.grad = g.clone()
        opt.step()
        for i in range(2):
            ms[i] = 0.9 * ms[i] + 0.1 * g[i].item() ** 2
            mom[i] = 0.9 * mom[i] + 0.045 * g[i].item() / math.sqrt(ms[i] + 1.0)
            expected[i] -= mom[i]
    assert w.tolist() == pytest.approx(expected, rel=1e-6)


def test_bad_recipe_names_and_values():
    with pytest.raises(ValueError, match="unknown recipe 'v2'"):
        get_recipe("v2")
    with pytest.raises(ValueError, match="must be positive"):
        get_recipe("fast", lr=-1.0)
    with pytest.raises(TypeError, match="no field"):
        get_recipe("fast", momentun=0.5)

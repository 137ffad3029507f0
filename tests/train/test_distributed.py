"""Process-group helpers on two gloo processes (torch.multiprocessing, no torchrun)."""

import os
import socket

import torch
import torch.multiprocessing as mp
from torch import nn

from inceptionkit.train import distributed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _broadcast(rank: int, port: int, folder: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    info = distributed.setup("cpu")
    torch.manual_seed(rank)  # each process draws its own network
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    model[1].running_mean.fill_(float(rank + 1))
    distributed.broadcast_state(model, info)
    torch.save(model.state_dict(), os.path.join(folder, f"rank{rank}.pt"))
    distributed.cleanup(info)


def test_broadcast_state_gives_every_process_rank_0s_parameters_and_buffers(tmp_path):
    mp.spawn(_broadcast, args=(_free_port(), str(tmp_path)), nprocs=2)
    zero, one = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    torch.manual_seed(0)
    drawn = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).state_dict()  # what rank 0 drew, by hand
    for key in zero:
        assert torch.equal(zero[key], one[key]), key
    assert torch.equal(one["0.weight"], drawn["0.weight"]) and torch.equal(one["1.running_mean"], torch.ones(4))

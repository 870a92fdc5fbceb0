"""Worker for test_distributed.py, started by torchrun: DDP training of fractalbrainnet_small with drop-path on."""
import json
import sys

import timm
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

import timm_fractalbrain  # noqa: F401
from timm_fractalbrain.data import digits_tensors


def main(out_path: str, steps: int = 3) -> None:
    dist.init_process_group('gloo')
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(1)
    torch.manual_seed(0)  # same initial weights on every rank (DDP also broadcasts them)
    model = timm.create_model('fractalbrainnet_small', num_classes=10, drop_path_rate=0.3)
    initial = torch.cat([p.detach().flatten() for p in model.parameters()]).clone()
    ddp = DistributedDataParallel(model)  # NOTE: find_unused_parameters stays False, as in timm's train.py
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
    train_x, train_y, _, _ = digits_tensors(32)
    torch.manual_seed(1000 + rank)  # different data and drop-path draws per rank
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(train_x), (8,))
        loss = F.cross_entropy(ddp(train_x[idx]), train_y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    if rank == 0:
        with open(out_path, 'w') as f:
            json.dump({
                'world': world,
                'steps': steps,
                'max_rank_diff': max((g - gathered[0]).abs().max().item() for g in gathered),
                'moved': (flat - initial).abs().max().item(),
                'losses': losses,
            }, f)
    dist.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1])

"""The few collective operations the training loop needs, with or without a process group.

Under ``torchrun`` / ``accelerate launch`` (``WORLD_SIZE > 1``) every rank runs
the same loop on its share of the batches; rank 0 validates, logs and writes
checkpoints, and the ranks agree on every stop decision so that they leave the
loop on the same batch. In one process every operation is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["Distributed", "init_distributed"]


@dataclass(frozen=True)
class Distributed:
    """This process's place in the group.

    Attributes:
        rank, world: process index and number of processes.
        device: the torch device collective tensors live on (the rank's GPU
            under NCCL, the CPU under gloo).
    """

    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def any(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag, true on every rank when it is true on any rank (one all-reduce)."""
        if self.world <= 1:
            return tuple(bool(f) for f in flags)
        import torch
        import torch.distributed as dist

        values = torch.tensor([float(f) for f in flags], device=self.device)
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return tuple(bool(v) for v in values.tolist())

    def from_main(self, *values: float) -> tuple[float, ...]:
        """Rank 0's ``values`` on every rank (one broadcast)."""
        if self.world <= 1:
            return tuple(float(v) for v in values)
        import torch
        import torch.distributed as dist

        tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self.device)
        dist.broadcast(tensor, src=0)
        return tuple(tensor.tolist())

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()


def init_distributed(device: str = "cpu") -> Distributed:
    """Join the process group that ``torchrun`` / ``accelerate launch`` describe in the environment.

    CPU processes join over gloo; on CUDA each process takes the GPU of its
    ``LOCAL_RANK`` and joins over NCCL. With ``WORLD_SIZE`` unset or 1, returns
    the single-process group without touching ``torch.distributed``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed(0, 1, device)
    import torch
    import torch.distributed as dist

    if str(device).startswith("cuda"):
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(torch.device(device))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if str(device).startswith("cuda") else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), str(device))

"""A library over several processes or machines, with the engine training uses (accelerate).

`accelerate launch --num_processes N predict.py ...` (or torchrun) starts N copies of predict.py.
The main process lists the library and finds what earlier runs finished (in the output and in any
part file), splits the rest by file size (`split_by_size`) and sends each process its share; each
process predicts its share into its own part file beside the output; when all are done, the main
process appends the parts to the output in the input's order (`writers.merge_parts`). A part file
is an output of its own, so a kill anywhere loses only the files in flight, and a rerun with any
number of processes finds every finished file in the output or in a part.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

WAIT = timedelta(hours=24)  # how long a process waits at a barrier for the slowest one


@dataclass
class Processes:
    """This process's place among the processes of a run; one process when not launched."""

    rank: int = 0
    world: int = 1
    local_world: int = 1
    device: str | None = None

    @property
    def main(self) -> bool:
        return self.rank == 0

    def broadcast(self, value: Any) -> Any:
        """The main process's `value`, on every process."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every process's `value`, by rank (on every process)."""
        if self.world == 1:
            return [value]
        import torch.distributed as dist

        values: list[Any] = [None] * self.world
        dist.all_gather_object(values, value)
        return values

    def barrier(self) -> None:
        if self.world > 1:
            from accelerate import PartialState

            PartialState().wait_for_everyone()


def launched() -> bool:
    """Whether accelerate or torchrun started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def processes(device: str | None) -> Processes:
    """Join the other processes of a launch (gloo between CPU processes, nccl between GPUs)."""
    if not launched():
        return Processes(device=device)
    import torch
    from accelerate import PartialState

    cpu = device == "cpu" or (device is None and not torch.cuda.is_available())
    state = PartialState(cpu=cpu, backend="gloo" if cpu else None, timeout=WAIT)
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", state.num_processes))  # processes on this machine
    return Processes(state.process_index, state.num_processes, local_world, device or str(state.device))


def split_by_size(paths: list[str], sizes: list[int], parts: int) -> list[list[str]]:
    """`paths` in `parts` shares of about equal bytes, each in the input's order: the largest file
    first to the share with the fewest bytes (ties to the lowest share), the same on every run."""
    loads = [0] * parts
    shares: list[list[int]] = [[] for _ in range(parts)]
    for index in sorted(range(len(paths)), key=lambda i: (-sizes[i], i)):
        share = min(range(parts), key=lambda p: (loads[p], p))
        shares[share].append(index)
        loads[share] += max(sizes[index], 1)
    return [[paths[i] for i in sorted(share)] for share in shares]


def part_path(output: str | os.PathLike, rank: int, world: int) -> Path:
    """The part file process `rank` of `world` writes, beside the output and of its format."""
    output = Path(output)
    return output.with_name(f"{output.stem}.part-{rank:03d}-of-{world:03d}{output.suffix}")


def part_paths(output: str | os.PathLike) -> list[Path]:
    """The part files of `output` that runs with any number of processes left."""
    output = Path(output)
    return sorted(p for p in output.parent.glob(f"{output.stem}.part-*-of-*{output.suffix}") if p.is_file())

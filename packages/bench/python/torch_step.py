"""Time one training step of the PyTorch reference model (tools/reference/moas_reference.py), the
same-machine baseline for the train-step benchmark. Run by `node dist/run.js --bench torch-step`.

stdin: {"threads": 2, "batch": 12, "seq": 256, "warmup": 1, "reps": 3, "configs": [<GptConfig>, ...]}
stdout: one JSON object per config: {"variant", "ms": [...], "params", "torch", "blas"}.

A step is what a PyTorch training loop does: forward (ce + balance_weight * balance, one pass), backward,
AdamW step (betas 0.9/0.99, eps 1e-8, weight decay 0.1 on >= 2-D tensors), zero_grad. float32, dropout on.
"""

import json
import os
import sys
import time

import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
import moas_reference as R  # noqa: E402


def blas_library():
    """The BLAS library this process mapped (Debian's default libblas is the slow reference BLAS)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "blas" in line.lower() and "/" in line}
        return sorted(paths)
    except OSError:
        return []


def main():
    job = json.load(sys.stdin)
    torch.set_num_threads(job["threads"])
    torch.manual_seed(0)
    B, T = job["batch"], job["seq"]
    for cfg in job["configs"]:
        model = R.GPT(R.GPTConfig(**cfg))
        model.train()
        decay = [p for p in model.parameters() if p.dim() >= 2]
        no_decay = [p for p in model.parameters() if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                                lr=3e-4, betas=(0.9, 0.99), eps=1e-8)
        x = torch.randint(cfg["vocab_size"], (B, T))
        y = torch.randint(cfg["vocab_size"], (B, T))
        ms = []
        for i in range(job["warmup"] + job["reps"]):
            t0 = time.perf_counter()
            _, ce, balance = model(x, y)
            loss = model.train_loss(ce, balance)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if i >= job["warmup"]:
                ms.append((time.perf_counter() - t0) * 1000)
        params = sum(p.numel() for p in model.parameters())
        print(json.dumps({"variant": cfg["attention"], "ms": ms, "params": params, "torch": torch.__version__,
                          "blas": blas_library()}), flush=True)


if __name__ == "__main__":
    main()

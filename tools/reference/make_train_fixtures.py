"""Write the multi-step training fixtures for @moas/trainer into packages/trainer/test/fixtures/.

Run from the repository root:  /usr/bin/python3 tools/reference/make_train_fixtures.py [CASE ...]

For one tiny model of each variant family: the reference model (moas_reference.py, float64) takes STEPS
AdamW updates (torch.optim.AdamW, the paper's betas / eps / weight decay on >= 2-D tensors, no dropout),
each on its own fixed batch. Each case writes <case>.json (config, lr, per-update losses) and
<case>.safetensors (float32 initial params, int64 batches, float64 params after the last update), as
llm.c's reference dumps do: the TypeScript trainer must follow the same trajectory.
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import BASE, CONFIG_KEY_ORDER, GATE_GAP, min_decision_gap, randomize_for_fixture, selected, top_k_of, write_safetensors  # noqa: E402
from moas_reference import GPT, GPTConfig, MoASKV  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT_DIR = os.path.join(ROOT, "packages", "trainer", "test", "fixtures")
GENERATED_BY = "tools/reference/make_train_fixtures.py"

B, T = 2, 8
STEPS = 4
LR = 1e-3
OPTIM = dict(betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)

CASES = [
    ("mha", dict(attention="mha")),
    ("moas", dict(attention="moas", n_kv_head=2, router_hidden=2, gate_dropout=0.0)),
    ("moas-topk", dict(attention="moas-topk", n_kv_head=2, moas_top_k=1, router_hidden=2)),
    ("gqe", dict(attention="gqe", n_kv_head=2, gqe_top_k=1, gqe_shared_kv="kv0")),
    ("moas-kv", dict(attention="moas-kv", n_kv_head=2, router_hidden=2, kv_levels=[4, 2, 1], kv_level_weights="shared",
                     kv_budget=0.4, kv_budget_warmup=2, kv_budget_weight=1.0)),
]


def budget_target(cfg, updates):
    """The trainer's annealed target after `updates` updates: 1 -> kv_budget over kv_budget_warmup."""
    if cfg.kv_budget_warmup == 0 or updates >= cfg.kv_budget_warmup:
        return cfg.kv_budget
    return 1 + (cfg.kv_budget - 1) * updates / cfg.kv_budget_warmup


def run_case(overrides, seed):
    cfg_dict = dict(BASE, **overrides, balance_weight=0.01)
    cfg = GPTConfig(**cfg_dict)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = GPT(cfg)
    randomize_for_fixture(model, gen)
    init32 = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model = model.double()
    batches = [(torch.randint(0, cfg.vocab_size, (B, T), generator=gen), torch.randint(0, cfg.vocab_size, (B, T), generator=gen)) for _ in range(STEPS)]
    decay = [p for _, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for _, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([dict(params=decay, weight_decay=OPTIM["weight_decay"]), dict(params=no_decay, weight_decay=0.0)],
                            lr=LR, betas=OPTIM["betas"], eps=OPTIM["eps"])
    model.train()
    losses, gap = [], float("inf")
    k = top_k_of(cfg)
    for t, (idx, targets) in enumerate(batches):
        for m in model.modules():
            if isinstance(m, MoASKV):
                m.target = budget_target(cfg, t)
        _, ce, balance = model(idx, targets)
        loss = model.train_loss(ce, balance)
        if k is not None:
            gap = min(gap, min(min_decision_gap(g.detach(), k) for g in model.gates))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return cfg_dict, init32, batches, model, losses, gap


def make_case(name, overrides, base_seed):
    for attempt in range(1000):
        seed = base_seed + 7919 * attempt
        cfg_dict, init32, batches, model, losses, gap = run_case(overrides, seed)
        if gap >= GATE_GAP:
            break
    else:
        raise RuntimeError(f"{name}: no seed keeps every routing decision {GATE_GAP} from a tie over {STEPS} updates")
    tensors = {f"init.{n}": p for n, p in init32.items()}
    for t, (idx, targets) in enumerate(batches):
        tensors[f"batch.{t}.idx"] = idx
        tensors[f"batch.{t}.targets"] = targets
    for n, p in model.named_parameters():
        tensors[f"final.{n}"] = p.detach()
    meta = {
        "case": name,
        "config": {key: cfg_dict[key] for key in CONFIG_KEY_ORDER if key in cfg_dict},
        "steps": STEPS,
        "lr": LR,
        "optimizer": {"beta1": OPTIM["betas"][0], "beta2": OPTIM["betas"][1], "eps": OPTIM["eps"], "weight_decay": OPTIM["weight_decay"]},
        "losses": losses,
        "torch_version": torch.__version__,
        "generated_by": GENERATED_BY,
    }
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, name + ".json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(OUT_DIR, name + ".safetensors"), tensors)
    return seed, gap, losses


def main(only=()):
    torch.set_num_threads(1)
    for i, name, overrides in selected(CASES, only):
        seed, gap, losses = make_case(name, overrides, base_seed=2000 + i)
        print(f"{name:10s} seed={seed} min_gate_gap={gap:.3g} losses={' '.join(f'{l:.6f}' for l in losses)}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Write the float64 reference fixtures for @moas/gpt into packages/gpt/test/fixtures/.

Run from the repository root:  /usr/bin/python3 tools/reference/make_fixtures.py [CASE ...]

For every case: <case>.json (config, losses) and <case>.safetensors (float32 params, int64 inputs,
float64 logits / gates / gradients of the training loss). See tools/reference/README.md.
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from moas_reference import GPT, GPTConfig, LayerNorm  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT_DIR = os.path.join(ROOT, "packages", "gpt", "test", "fixtures")
GENERATED_BY = "tools/reference/make_fixtures.py"

B, T = 2, 8
# every top-k decision of a fixture must be separated from the next candidate by at least this much
# (the brief asks for > 1e-6; a wider margin keeps the choice unambiguous for float32 consumers too)
GATE_GAP = 1e-3

# n_embd 8 keeps the fixtures small (head dim d = 2); gqe-top2 uses n_embd 16 so that d = 2 with 8 heads
BASE = dict(vocab_size=11, block_size=8, n_layer=2, n_head=4, n_embd=8, bias=False, dropout=0.0)
MOAS = dict(n_kv_head=2)
ROUTER = dict(router_hidden=2)  # n_embd // 4
GQE = dict(n_kv_head=2, gqe_top_k=1, gqe_shared_kv="kv0")
KV = dict(kv_levels=[4, 2, 1], kv_level_weights="shared", kv_budget=0.3, kv_budget_warmup=100, kv_budget_weight=1.0)

# A case's seed is 1000 + its index here: append new cases at the end, so the others keep theirs.
CASES = [
    ("mha", dict(attention="mha")),
    ("mha-bias", dict(attention="mha", bias=True)),
    ("gqa", dict(attention="gqa", n_kv_head=2)),
    ("mqa", dict(attention="mqa")),
    ("static-moas", dict(attention="static-moas", **MOAS)),
    ("moas", dict(attention="moas", **MOAS, **ROUTER, gate_dropout=0.0)),
    ("moas-bias", dict(attention="moas", bias=True, **MOAS, **ROUTER, gate_dropout=0.0)),
    ("moas-topk1", dict(attention="moas-topk", moas_top_k=1, **MOAS, **ROUTER)),
    ("moas-topk2", dict(attention="moas-topk", moas_top_k=2, **MOAS, **ROUTER)),
    ("gqe", dict(attention="gqe", **GQE)),
    ("gqe-bias", dict(attention="gqe", bias=True, **GQE)),
    ("gqe-own-kv", dict(attention="gqe", **dict(GQE, gqe_shared_kv="own"))),
    ("gqe-hard-only", dict(attention="gqe-hard-only", **GQE)),
    ("gqe-no-renorm", dict(attention="gqe-no-renorm", **GQE)),
    ("gqe-no-shared", dict(attention="gqe-no-shared", **GQE)),
    ("gqe-top2", dict(attention="gqe", n_embd=16, n_head=8, n_kv_head=2, gqe_top_k=2, gqe_shared_kv="kv0")),
    # a budget below the choices' mean cost, so the budget loss and its gradient are active
    ("moas-kv", dict(attention="moas-kv", **MOAS, **ROUTER, **KV)),
    ("moas-kv-own", dict(attention="moas-kv", **MOAS, **ROUTER, **dict(KV, kv_level_weights="own"))),
]

CONFIG_KEY_ORDER = [
    "vocab_size", "block_size", "n_layer", "n_head", "n_embd", "bias", "dropout", "attention",
    "n_kv_head", "moas_top_k", "gqe_top_k", "gqe_shared_kv", "router_hidden", "gate_dropout",
    "kv_levels", "kv_level_weights", "kv_budget", "kv_budget_warmup", "kv_budget_weight", "balance_weight",
]


# ----------------------------------------------------------------------------------------------
# safetensors writer (format: u64-LE header length, JSON header, raw little-endian data)

_DTYPES = {torch.float32: ("F32", "<f4"), torch.float64: ("F64", "<f8"), torch.int64: ("I64", "<i8")}


def write_safetensors(path, tensors):
    # 8-byte dtypes first so every tensor's data is aligned to its element size; then by name
    items = sorted(tensors.items(), key=lambda kv: (-kv[1].element_size(), kv[0]))
    header, blobs, offset = {}, [], 0
    for name, t in items:
        tag, np_dtype = _DTYPES[t.dtype]
        data = t.detach().cpu().contiguous().numpy().astype(np.dtype(np_dtype)).tobytes()
        header[name] = {"dtype": tag, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - (8 + len(hb)) % 8) % 8)  # pad with spaces so the data starts 8-aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    inv = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}
    np_of = {"F32": "<f4", "F64": "<f8", "I64": "<i8"}
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=np.dtype(np_of[info["dtype"]])).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy()).to(inv[info["dtype"]])
    return out


# ----------------------------------------------------------------------------------------------
# fixture weights

@torch.no_grad()
def randomize_for_fixture(model, gen):
    """Spec init first (done in GPT.__init__), then re-draw every tensor at a scale where each path
    matters numerically: with the spec's N(0, 0.02) the attention scores are ~0 (uniform attention)
    and a wrong scale, mask or head mapping would change the outputs by far less than a test
    tolerance. So: Linear weights N(0, std 1/sqrt(fan_in)), embeddings N(0, 0.5), router weights N(0, 0.5),
    LayerNorm weights 1 + 0.1 N(0,1), every bias 0.05 N(0,1)."""

    def normal_(p, std):
        p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * std)

    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Embedding):
            normal_(m.weight, 0.5)
        elif isinstance(m, torch.nn.Linear):
            is_router = ".router" in name
            normal_(m.weight, 0.5 if is_router else 1.0 / math.sqrt(m.in_features))
            if m.bias is not None:
                normal_(m.bias, 0.05)
        elif isinstance(m, LayerNorm):
            m.weight.copy_(1.0 + 0.1 * torch.randn(m.weight.shape, generator=gen, dtype=m.weight.dtype))
            if m.bias is not None:
                normal_(m.bias, 0.05)


def top_k_of(cfg):
    if cfg.attention == "moas-topk":
        return cfg.moas_top_k
    if cfg.attention.startswith("gqe"):
        return cfg.gqe_top_k
    if cfg.attention == "moas-kv":
        return 1
    return None


def min_decision_gap(gates, k):
    """Smallest gap between adjacent sorted gates among the positions that decide the top-k set and
    its order (sorted[0..k], i.e. k+1 values when there is an unselected candidate)."""
    s = torch.sort(gates, dim=-1, descending=True).values
    n = min(k + 1, s.size(-1))
    return (s[..., : n - 1] - s[..., 1:n]).min().item()


def build_case(name, overrides, seed):
    cfg_dict = dict(BASE, **overrides, balance_weight=0.01)
    cfg = GPTConfig(**cfg_dict)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = GPT(cfg)  # float32, spec init
    randomize_for_fixture(model, gen)
    params32 = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model = model.double()  # exact upcast of the float32 values
    for k, v in model.state_dict().items():
        assert torch.equal(v, params32[k].double()), k
    idx = torch.randint(0, cfg.vocab_size, (B, T), generator=gen)
    targets = torch.randint(0, cfg.vocab_size, (B, T), generator=gen)
    model.train()
    logits, ce, balance = model(idx, targets)
    loss = model.train_loss(ce, balance)
    model.zero_grad(set_to_none=True)
    loss.backward()
    return cfg_dict, cfg, model, params32, idx, targets, logits, ce, balance, loss


def make_case(name, overrides, base_seed):
    for attempt in range(1000):
        seed = base_seed + 7919 * attempt
        cfg_dict, cfg, model, params32, idx, targets, logits, ce, balance, loss = build_case(name, overrides, seed)
        k = top_k_of(cfg)
        if k is None:
            break
        gap = min(min_decision_gap(g.detach(), k) for g in model.gates)
        if gap >= GATE_GAP:
            break
    else:
        raise RuntimeError(f"{name}: no seed with gate gap >= {GATE_GAP}")
    if k is not None:
        gap = min(min_decision_gap(g.detach(), k) for g in model.gates)
        assert gap > 1e-6 and gap >= GATE_GAP, (name, gap)

    tensors = {}
    for pname, p in params32.items():
        tensors["param." + pname] = p
    tensors["input.idx"] = idx
    tensors["input.targets"] = targets
    tensors["out.logits"] = logits.detach()
    for i, g in enumerate(model.gates):
        if g is not None:
            tensors[f"out.gates.{i}"] = g.detach()
    for pname, p in model.named_parameters():
        assert p.grad is not None, (name, pname)
        tensors["grad." + pname] = p.grad.detach()
    assert set(params32) == {n for n, _ in model.named_parameters()}

    config = {key: cfg_dict[key] for key in CONFIG_KEY_ORDER if key in cfg_dict}
    meta = {
        "case": name,
        "config": config,
        "ce_loss": ce.item(),
        "balance_loss": balance.item(),
        "train_loss": loss.item(),
        "torch_version": torch.__version__,
        "generated_by": GENERATED_BY,
    }
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, name + ".json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    st_path = os.path.join(OUT_DIR, name + ".safetensors")
    write_safetensors(st_path, tensors)
    back = read_safetensors(st_path)
    for key, t in tensors.items():
        assert back[key].dtype == t.dtype and torch.equal(back[key], t), key
    info = f"seed={seed}" + (f" min_gate_gap={gap:.3g}" if k is not None else "")
    return meta, os.path.getsize(st_path), info


def selected(cases, only):
    """(index, name, overrides) of every case, or of the named ones; an unknown name stops the script."""
    unknown = set(only) - {name for name, _ in cases}
    if unknown:
        raise SystemExit(f"unknown case(s) {sorted(unknown)}; cases: {[name for name, _ in cases]}")
    return [(i, name, overrides) for i, (name, overrides) in enumerate(cases) if not only or name in only]


def main(only=()):
    """Write every case, or only the named ones (their seeds do not depend on which are written)."""
    torch.set_num_threads(1)
    total = 0
    for i, name, overrides in selected(CASES, only):
        meta, size, info = make_case(name, overrides, base_seed=1000 + i)
        total += size + os.path.getsize(os.path.join(OUT_DIR, name + ".json"))
        print(f"{name:15s} ce={meta['ce_loss']:.6f} balance={meta['balance_loss']:.6f} "
              f"train={meta['train_loss']:.6f} {size / 1024:.1f} KiB {info}")
    print(f"wrote {len(CASES)} cases to {os.path.relpath(OUT_DIR, ROOT)} ({total / 1024:.1f} KiB total)")


if __name__ == "__main__":
    main(sys.argv[1:])

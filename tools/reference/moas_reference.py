"""Independent PyTorch reference of the moas attention variants.

Written from docs/variants.md alone (nanoGPT style). One class per attention scheme:

  mha, gqa, mqa                      -> MHA, GQA, MQA
  static-moas, moas, moas-topk       -> StaticMoAS, MoAS, MoASTopK
  gqe, gqe-hard-only, gqe-no-renorm,
  gqe-no-shared                      -> GQE (mode chosen by the variant name)
  moas-kv                            -> MoASKV

GPT.forward(idx, targets) returns (logits, ce_loss, balance_loss). The balance loss is the mean over
layers of each layer's router balance loss (0 for variants without a router). The training loss is
ce_loss + balance_weight * balance_loss (see GPT.train_loss). The softmax gates of the last forward
are kept in GPT.gates (one tensor per layer, or None for unrouted layers).

Parameter names equal the checkpoint tensor names of the spec; the output head is tied to
transformer.wte.weight (no lm_head module, so nothing is stored twice) and there are no buffers.
"""

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

VARIANTS = (
    "mha", "gqa", "mqa",
    "static-moas", "moas", "moas-topk",
    "gqe", "gqe-hard-only", "gqe-no-renorm", "gqe-no-shared",
    "moas-kv",
)


@dataclass
class GPTConfig:
    vocab_size: int = 11
    block_size: int = 8
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 16
    bias: bool = False
    dropout: float = 0.0
    attention: str = "mha"
    n_kv_head: int = 2                    # gqa, gqa branch of MoAS, G of GQE
    moas_top_k: int = 1                   # moas-topk
    gqe_top_k: int = 1                    # gqe*
    gqe_shared_kv: str = "kv0"            # gqe*: "kv0" | "own"
    router_hidden: Optional[int] = None   # moas/moas-topk router width, default n_embd // 4
    gate_dropout: Optional[float] = None  # moas, default dropout
    kv_levels: Optional[tuple] = None     # moas-kv: KV heads per level, finest (= n_head) first
    kv_level_weights: str = "shared"      # moas-kv: "shared" (means of the finest heads) | "own"
    kv_budget: float = 0.5                # moas-kv: target bytes per token / MHA's
    kv_budget_warmup: int = 100           # moas-kv: updates to anneal the target from 1 to kv_budget
    kv_budget_weight: float = 1.0         # moas-kv: weight of the budget loss in the training loss
    balance_weight: float = 0.01


# ----------------------------------------------------------------------------------------------
# building blocks

class LayerNorm(nn.Module):
    """LayerNorm with eps 1e-5 and an optional bias (weight only when bias is False)."""

    def __init__(self, ndim, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


def causal_attention(q, k, v, attn_dropout):
    """softmax(q k^T / sqrt(d) + causal mask) v, dropout on the probabilities.

    q, k, v: [..., T, d] (k, v broadcast against q over the leading dims)."""
    T, d = q.size(-2), q.size(-1)
    att = (q @ k.transpose(-2, -1)) / math.sqrt(d)
    mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    att = att.masked_fill(~mask, float("-inf"))
    att = F.softmax(att, dim=-1)
    att = attn_dropout(att)
    return att @ v


def top_k_desc(p, k):
    """Indices of the k largest entries of p along the last dim, in descending order, ties lowest
    index first (stable sort)."""
    return torch.sort(p, dim=-1, descending=True, stable=True).indices[..., :k]


def switch_loss(p, chosen, S):
    """Switch balance loss S * sum_s f_s * P_s.

    p: [N, S] gates; chosen: [N, k] chosen indices. f_s = fraction of the N*k (token, choice) pairs
    that chose s; P_s = mean over tokens of p_s."""
    N, k = chosen.shape
    counts = F.one_hot(chosen, S).sum(dim=(0, 1)).to(p.dtype)  # [S]
    f = counts / (N * k)
    P = p.mean(dim=0)
    return S * (f * P).sum()


# ----------------------------------------------------------------------------------------------
# plain schemes (each returns the block output including residual dropout)

class MHA(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg.n_embd
        assert C % cfg.n_head == 0
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(C, 3 * C, bias=cfg.bias)
        self.c_proj = nn.Linear(C, C, bias=cfg.bias)
        self.attn_dropout = nn.Dropout(cfg.dropout)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):
        B, T, C = x.shape
        H = self.n_head
        d = C // H
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, H, d).transpose(1, 2)  # [B, H, T, d]
        k = k.view(B, T, H, d).transpose(1, 2)
        v = v.view(B, T, H, d).transpose(1, 2)
        y = causal_attention(q, k, v, self.attn_dropout)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class GQA(nn.Module):
    def __init__(self, cfg, n_kv_head=None):
        super().__init__()
        C = cfg.n_embd
        self.n_head = cfg.n_head
        self.n_kv_head = cfg.n_kv_head if n_kv_head is None else n_kv_head
        assert C % self.n_head == 0 and self.n_head % self.n_kv_head == 0
        d = C // self.n_head
        self.q_proj = nn.Linear(C, C, bias=cfg.bias)
        self.k_proj = nn.Linear(C, self.n_kv_head * d, bias=cfg.bias)
        self.v_proj = nn.Linear(C, self.n_kv_head * d, bias=cfg.bias)
        self.c_proj = nn.Linear(C, C, bias=cfg.bias)
        self.attn_dropout = nn.Dropout(cfg.dropout)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):
        B, T, C = x.shape
        H, G = self.n_head, self.n_kv_head
        d = C // H
        q = self.q_proj(x).view(B, T, H, d).transpose(1, 2)  # [B, H, T, d]
        k = self.k_proj(x).view(B, T, G, d).transpose(1, 2)  # [B, G, T, d]
        v = self.v_proj(x).view(B, T, G, d).transpose(1, 2)
        # query head h uses KV head h // (H / G)
        kv_of_head = torch.arange(H, device=x.device) // (H // G)
        k = k[:, kv_of_head]
        v = v[:, kv_of_head]
        y = causal_attention(q, k, v, self.attn_dropout)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MQA(GQA):
    def __init__(self, cfg):
        super().__init__(cfg, n_kv_head=1)


# ----------------------------------------------------------------------------------------------
# MoAS: mixture of the three schemes

class StaticMoAS(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.mha = MHA(cfg)
        self.gqa = GQA(cfg)
        self.mqa = MQA(cfg)

    def branches(self, x):
        return torch.stack([self.mha(x), self.gqa(x), self.mqa(x)], dim=-1)  # [B, T, C, 3]

    def forward(self, x):
        y = self.branches(x).sum(dim=-1) / 3
        return y, x.new_zeros(()), None


class MoAS(StaticMoAS):
    S = 3

    def __init__(self, cfg):
        super().__init__(cfg)
        C = cfg.n_embd
        hidden = cfg.router_hidden if cfg.router_hidden is not None else C // 4
        self.router = nn.Sequential(
            nn.Linear(C, hidden, bias=False),
            nn.GELU(),  # exact (erf) form
            nn.Linear(hidden, self.S, bias=False),
        )
        gd = cfg.dropout if cfg.gate_dropout is None else cfg.gate_dropout
        self.gate_dropout = nn.Dropout(gd)

    def forward(self, x):
        O = self.branches(x)
        p = F.softmax(self.router(x), dim=-1)  # [B, T, 3]
        # balance loss on the gates before gate dropout
        mean_p = p.reshape(-1, self.S).mean(dim=0)
        balance = ((mean_p - 1.0 / self.S) ** 2).mean()
        g = self.gate_dropout(p)
        y = (O * g.unsqueeze(2)).sum(dim=-1)
        return y, balance, p


class MoASTopK(MoAS):
    def __init__(self, cfg):
        super().__init__(cfg)
        assert 1 <= cfg.moas_top_k <= self.S
        self.k = cfg.moas_top_k

    def forward(self, x):
        O = self.branches(x)
        p = F.softmax(self.router(x), dim=-1)  # [B, T, 3]
        chosen = top_k_desc(p, self.k)  # [B, T, k]
        mask = torch.zeros_like(p).scatter(-1, chosen, 1.0)
        w = p * mask
        if self.k >= 2:
            w = w / w.sum(dim=-1, keepdim=True)
        # k == 1: the raw gate of the chosen branch (Switch style); unchosen weights are exactly 0
        y = (O * w.unsqueeze(2)).sum(dim=-1)
        balance = switch_loss(p.reshape(-1, self.S), chosen.reshape(-1, self.k), self.S)
        return y, balance, p


# ----------------------------------------------------------------------------------------------
# GQE: grouped query experts

class GQE(nn.Module):
    MODES = ("gqe", "gqe-hard-only", "gqe-no-renorm", "gqe-no-shared")

    def __init__(self, cfg, mode="gqe"):
        super().__init__()
        assert mode in self.MODES
        C, H, G = cfg.n_embd, cfg.n_head, cfg.n_kv_head
        assert C % H == 0 and H % G == 0
        d = C // H
        self.H, self.G, self.M, self.d = H, G, H // G, d
        self.k = cfg.gqe_top_k
        assert 1 <= self.k <= self.M
        self.weighted_slot = mode in ("gqe", "gqe-no-shared")
        self.scale_by_gate = mode == "gqe-no-renorm"
        self.shared = mode != "gqe-no-shared"
        assert cfg.gqe_shared_kv in ("kv0", "own")
        self.own_kv = self.shared and cfg.gqe_shared_kv == "own"

        self.q_proj = nn.Linear(C, H * d, bias=cfg.bias)
        self.k_proj = nn.Linear(C, G * d, bias=cfg.bias)
        self.v_proj = nn.Linear(C, G * d, bias=cfg.bias)
        self.router = nn.Linear(C, G * self.M, bias=cfg.bias)
        if self.shared:
            self.shared_q_proj = nn.Linear(C, d, bias=cfg.bias)
            if self.own_kv:
                self.shared_k_proj = nn.Linear(C, d, bias=cfg.bias)
                self.shared_v_proj = nn.Linear(C, d, bias=cfg.bias)
        slots = self.k * G + int(self.weighted_slot) + int(self.shared)
        self.c_proj = nn.Linear(slots * d, C, bias=cfg.bias)
        self.attn_dropout = nn.Dropout(cfg.dropout)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):
        B, T, C = x.shape
        G, M, k, d = self.G, self.M, self.k, self.d
        q = self.q_proj(x).view(B, T, G, M, d)  # head h = g*M + m
        kv_k = self.k_proj(x).view(B, T, G, d)
        kv_v = self.v_proj(x).view(B, T, G, d)

        p = F.softmax(self.router(x).view(B, T, G, M), dim=-1)  # p[g, m]
        e = top_k_desc(p, k)  # [B, T, G, k] expert of slot (g, r), descending gate order
        p_sel = p.gather(-1, e)  # p~[g, r]

        # gather the selected query vectors into slots
        q_sel = q.gather(3, e.unsqueeze(-1).expand(B, T, G, k, d))  # [B, T, G, k, d]
        qh = q_sel.permute(0, 2, 3, 1, 4)  # [B, G, k, T, d]
        kh = kv_k.permute(0, 2, 1, 3).unsqueeze(2)  # [B, G, 1, T, d]  KV head g
        vh = kv_v.permute(0, 2, 1, 3).unsqueeze(2)
        o = causal_attention(qh, kh, vh, self.attn_dropout)  # [B, G, k, T, d]
        o = o.permute(0, 3, 1, 2, 4)  # [B, T, G, k, d]

        parts = []
        hard = o * p_sel.unsqueeze(-1) if self.scale_by_gate else o
        parts.append(hard.reshape(B, T, G * k * d))  # o[0,0] .. o[0,k-1], o[1,0], ..
        if self.weighted_slot:
            w = p_sel / p_sel.sum(dim=(2, 3), keepdim=True)  # jointly over all k*G selections
            parts.append((w.unsqueeze(-1) * o).sum(dim=(2, 3)))  # [B, T, d]
        if self.shared:
            qs = self.shared_q_proj(x)  # [B, T, d]
            if self.own_kv:
                ks, vs = self.shared_k_proj(x), self.shared_v_proj(x)
            else:
                ks, vs = kv_k[:, :, 0], kv_v[:, :, 0]  # KV head 0
            parts.append(causal_attention(qs, ks, vs, self.attn_dropout))  # [B, T, d]
        y = self.resid_dropout(self.c_proj(torch.cat(parts, dim=-1)))

        # Switch loss per group (S = M, choices = the k selections), averaged over groups
        pf = p.reshape(B * T, G, M)
        ef = e.reshape(B * T, G, k)
        balance = torch.stack([switch_loss(pf[:, g], ef[:, g], M) for g in range(G)]).mean()
        return y, balance, p


# ----------------------------------------------------------------------------------------------
# moas-kv: the router picks, per token, the level of KV heads the token writes

class MoASKV(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, H = cfg.n_embd, cfg.n_head
        self.H, self.d = H, C // H
        self.sizes = list(cfg.kv_levels)
        assert self.sizes[0] == H and all(H % G == 0 for G in self.sizes)
        self.own = cfg.kv_level_weights == "own"
        self.q_proj = nn.Linear(C, C, bias=cfg.bias)
        self.k_proj = nn.Linear(C, C, bias=cfg.bias)
        self.v_proj = nn.Linear(C, C, bias=cfg.bias)
        if self.own:
            self.levels = nn.ModuleDict({
                str(i): nn.ModuleDict(dict(k_proj=nn.Linear(C, G * self.d, bias=cfg.bias),
                                           v_proj=nn.Linear(C, G * self.d, bias=cfg.bias)))
                for i, G in enumerate(self.sizes) if i > 0})
        hidden = cfg.router_hidden if cfg.router_hidden is not None else C // 4
        self.router = nn.Sequential(nn.Linear(C, hidden, bias=False), nn.GELU(), nn.Linear(hidden, len(self.sizes), bias=False))
        self.c_proj = nn.Linear(C, C, bias=cfg.bias)
        self.attn_dropout = nn.Dropout(cfg.dropout)
        self.resid_dropout = nn.Dropout(cfg.dropout)
        self.costs = [G / H for G in self.sizes]
        self.target = cfg.kv_budget  # the budget's target (the trainer anneals it; fixtures use kv_budget)

    def level_heads(self, x, fine, which, i):
        """[B, T, H, d]: level i's heads, head h of the result being the level head that covers h."""
        B, T, _ = x.shape
        G, H, d = self.sizes[i], self.H, self.d
        if i == 0:
            lv = fine.view(B, T, H, d)
            return lv
        if self.own:
            lv = self.levels[str(i)][which](x).view(B, T, G, d)
        else:
            lv = fine.view(B, T, G, H // G, d).mean(dim=3)
        return lv.repeat_interleave(H // G, dim=2)

    def forward(self, x):
        B, T, C = x.shape
        H, d = self.H, self.d
        p = F.softmax(self.router(x), dim=-1)  # [B, T, L]
        chosen = top_k_desc(p, 1)[..., 0]  # [B, T]
        hard = F.one_hot(chosen, len(self.sizes)).to(p.dtype)
        z = hard + (p - p.detach())  # straight-through: the chosen level forward, p's gradient backward
        fine_k, fine_v = self.k_proj(x), self.v_proj(x)
        k = sum(z[..., i, None, None] * self.level_heads(x, fine_k, "k_proj", i) for i in range(len(self.sizes)))
        v = sum(z[..., i, None, None] * self.level_heads(x, fine_v, "v_proj", i) for i in range(len(self.sizes)))
        q = self.q_proj(x).view(B, T, H, d).transpose(1, 2)
        y = causal_attention(q, k.transpose(1, 2), v.transpose(1, 2), self.attn_dropout)
        y = self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(B, T, C)))
        mean_cost = (z * torch.tensor(self.costs, dtype=z.dtype)).sum(dim=-1).mean()
        budget = (mean_cost - self.target).abs()  # two-sided: the layer holds its budget
        return y, budget, p


# ----------------------------------------------------------------------------------------------
# GPT

def make_attention(cfg):
    a = cfg.attention
    if a == "mha":
        return MHA(cfg)
    if a == "gqa":
        return GQA(cfg)
    if a == "mqa":
        return MQA(cfg)
    if a == "static-moas":
        return StaticMoAS(cfg)
    if a == "moas":
        return MoAS(cfg)
    if a == "moas-topk":
        return MoASTopK(cfg)
    if a in GQE.MODES:
        return GQE(cfg, mode=a)
    if a == "moas-kv":
        return MoASKV(cfg)
    raise ValueError(f"unknown attention variant {a!r}")


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg.n_embd
        self.c_fc = nn.Linear(C, 4 * C, bias=cfg.bias)
        self.gelu = nn.GELU()  # exact (erf) form
        self.c_proj = nn.Linear(4 * C, C, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln_1 = LayerNorm(cfg.n_embd, cfg.bias)
        self.attn = make_attention(cfg)
        self.ln_2 = LayerNorm(cfg.n_embd, cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x):
        out = self.attn(self.ln_1(x))
        if isinstance(out, tuple):  # routed schemes: (y, balance, gates)
            a, balance, gates = out
        else:  # plain schemes: y only
            a, balance, gates = out, x.new_zeros(()), None
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, balance, gates


class GPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(cfg.vocab_size, cfg.n_embd),
            wpe=nn.Embedding(cfg.block_size, cfg.n_embd),
            drop=nn.Dropout(cfg.dropout),
            h=nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)]),
            ln_f=LayerNorm(cfg.n_embd, cfg.bias),
        ))
        self.gates = []
        self.init_weights()

    @torch.no_grad()
    def init_weights(self):
        """Spec init: Linear/Embedding weights N(0, 0.02), biases 0, LayerNorm weight 1 (bias 0),
        every c_proj.weight N(0, 0.02 / sqrt(2 * n_layer))."""
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, LayerNorm):
                nn.init.ones_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * self.config.n_layer))

    def forward(self, idx, targets=None):
        B, T = idx.shape
        assert T <= self.config.block_size
        pos = torch.arange(T, device=idx.device)
        wte = self.transformer.wte.weight
        h = self.transformer.drop(wte[idx] + self.transformer.wpe.weight[pos])
        balances, self.gates = [], []
        for block in self.transformer.h:
            h, bal, gates = block(h)
            balances.append(bal)
            self.gates.append(gates)
        h = self.transformer.ln_f(h)
        logits = h @ wte.t()  # tied head
        ce = None
        if targets is not None:
            ce = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        balance = torch.stack(balances).mean()
        return logits, ce, balance

    def train_loss(self, ce, balance):
        weight = self.config.kv_budget_weight if self.config.attention == "moas-kv" else self.config.balance_weight
        return ce + weight * balance

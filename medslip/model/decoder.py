"""DETR-style pre-norm query decoder (the official `PreTrain_MeDSLIP/models/transformer.py`),
batch-first; no positional encodings (official) or, with ``model.positions: sine``, DETR's fixed
2-D sine code added to the cross-attention keys only (values and queries stay as they are).

Per layer: ``t += Drop(SelfAttn(LN1 t))``; ``t += Drop(CrossAttn(q=LN2 t, k=v=memory))``;
``t += Drop(FFN(LN3 t))`` with a ReLU FFN; optionally a final LayerNorm. Parameter names follow
the official code (``self_attn``/``multihead_attn`` with ``in_proj_weight``, ``in_proj_bias``,
``out_proj``; ``linear1``, ``linear2``, ``norm1..3``, ``layers.{i}``, ``norm``). Weights start
N(0, ``init_std``) (config ``model.init_std``; 0.02 in the official code).

Positions let a query attend to a place (a lobe query to its zone) instead of relying on what
the trunk's features say about where they are.

Cross-attention maps (head-averaged softmax weights, (B, Q, T)) are computed only when asked;
otherwise attention runs through :func:`torch.nn.functional.scaled_dot_product_attention`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medslip.errors import MedslipError


class Attention(nn.Module):
    """Multi-head attention with ``nn.MultiheadAttention``'s parameters and init convention
    (projection biases start at zero), batch-first."""

    def __init__(self, d_model: int, n_heads: int, dropout: float, init_std: float) -> None:
        super().__init__()
        if d_model % n_heads:
            raise MedslipError(f"model: d_model {d_model} is not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)
        nn.init.normal_(self.in_proj_weight, std=init_std)
        nn.init.normal_(self.out_proj.weight, std=init_std)
        nn.init.zeros_(self.out_proj.bias)

    def _heads(self, x: Tensor) -> Tensor:
        """(B, L, d) -> (B, heads, L, d / heads)."""
        return x.unflatten(-1, (self.n_heads, -1)).transpose(1, 2)

    def forward(
        self, query: Tensor, memory: Tensor, need_weights: bool, key_pos: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """query (B, Q, d), memory (B, T, d) -> output (B, Q, d), weights (B, Q, T) or None.

        ``memory is query`` means self-attention (one fused projection). ``key_pos`` (T, d) is
        added to the memory for the keys only. The weights are the head-averaged softmax
        probabilities (before attention dropout).
        """
        d = query.shape[-1]
        if memory is query:
            q, k, v = F.linear(query, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        else:
            w_q, w_kv = self.in_proj_weight.split([d, 2 * d])
            b_q, b_kv = self.in_proj_bias.split([d, 2 * d])
            q = F.linear(query, w_q, b_q)
            if key_pos is None:
                k, v = F.linear(memory, w_kv, b_kv).chunk(2, dim=-1)
            else:
                (w_k, w_v), (b_k, b_v) = w_kv.chunk(2), b_kv.chunk(2)
                k, v = F.linear(memory + key_pos, w_k, b_k), F.linear(memory, w_v, b_v)
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            probs = (q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5).softmax(dim=-1)
            out = F.dropout(probs, p) @ v
            weights = probs.mean(dim=1)
        else:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        return self.out_proj(out.transpose(1, 2).flatten(2)), weights


class DecoderLayer(nn.Module):
    """One pre-norm decoder layer (self-attention, cross-attention, ReLU FFN)."""

    def __init__(
        self, d_model: int, n_heads: int, d_ffn: int, dropout: float, init_std: float
    ) -> None:
        super().__init__()
        self.self_attn = Attention(d_model, n_heads, dropout, init_std)
        self.multihead_attn = Attention(d_model, n_heads, dropout, init_std)
        self.linear1 = nn.Linear(d_model, d_ffn)
        self.linear2 = nn.Linear(d_ffn, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(
        self, tgt: Tensor, memory: Tensor, need_weights: bool, key_pos: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        """tgt (B, Q, d), memory (B, T, d), key_pos (T, d) or None -> tgt (B, Q, d),
        cross-attention (B, Q, T) or None."""
        x = self.norm1(tgt)
        tgt = tgt + self.dropout1(self.self_attn(x, x, False)[0])
        out, weights = self.multihead_attn(self.norm2(tgt), memory, need_weights, key_pos)
        tgt = tgt + self.dropout2(out)
        ffn = self.linear2(self.dropout(F.relu(self.linear1(self.norm3(tgt)))))
        return tgt + self.dropout3(ffn), weights


class TransformerDecoder(nn.Module):
    """``n_layers`` pre-norm layers; a final LayerNorm ``norm`` when ``final_norm``; the
    cross-attention keys get :func:`sine_positions` when ``positions == "sine"``.

    MeDSLIP's two decoders share one final LayerNorm: they are built with ``final_norm=False``
    and the model applies its single ``decoder_norm`` to both outputs (see ``streams``).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ffn: int,
        dropout: float,
        n_layers: int,
        final_norm: bool,
        init_std: float,
        positions: str,
    ) -> None:
        super().__init__()
        if positions == "sine" and d_model % 4:
            raise MedslipError(
                f"model: positions 'sine' need d_model divisible by 4, got {d_model}"
            )
        self.positions = positions
        self.layers = nn.ModuleList(
            DecoderLayer(d_model, n_heads, d_ffn, dropout, init_std) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model) if final_norm else None
        init_weights(self, init_std)

    def forward(
        self, tgt: Tensor, memory: Tensor, return_attention: bool
    ) -> tuple[Tensor, list[Tensor] | None]:
        """Queries (B, Q, d) over memory (B, T, d) -> (B, Q, d) and, if ``return_attention``,
        the per-layer head-averaged cross-attention maps, ``n_layers`` x (B, Q, T)."""
        maps = []
        key_pos = None
        if self.positions == "sine":
            key_pos = sine_positions(memory.shape[1], memory.shape[2], memory.device)
            key_pos = key_pos.to(memory.dtype)
        for layer in self.layers:
            tgt, weights = layer(tgt, memory, return_attention, key_pos)
            maps.append(weights)
        if self.norm is not None:
            tgt = self.norm(tgt)
        return tgt, (maps if return_attention else None)


def sine_positions(tokens: int, d: int, device: torch.device | None = None) -> Tensor:
    """DETR's fixed 2-D sine code of a square token grid: (T, d) float32 on ``device`` for
    T = g·g tokens in row-major order (the trunk's ``flatten``), d/4 frequencies
    10000^(-k/(d/4)) of the row and of the column, each at the token centre's fraction of the
    grid × 2π, as [sin row, cos row, sin col, cos col]. Built where the memory is (no host copy
    in the step)."""
    g = math.isqrt(tokens)
    if g * g != tokens:
        raise MedslipError(f"model: positions 'sine' need a square token grid, got {tokens} tokens")
    q = d // 4
    centre = (torch.arange(g, dtype=torch.float32, device=device) + 0.5) / g * 2 * math.pi
    angle = centre[:, None] * 10000 ** (-torch.arange(q, device=device) / q)  # (g, q)
    row = torch.cat([angle.sin(), angle.cos()], dim=-1)  # (g, d/2)
    return torch.cat([row[:, None].expand(g, g, -1), row[None].expand(g, g, -1)], -1).flatten(0, 1)


def init_weights(module: nn.Module, std: float) -> None:
    """N(0, ``std``) for every Linear weight below ``module``, biases keep their PyTorch default
    (the official init at 0.02; :class:`Attention` initialises its input projection the same
    way when built)."""
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            nn.init.normal_(sub.weight, std=std)

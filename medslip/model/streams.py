"""The pretrained models: MeDSLIP (and its ablations), MedKLIP and a global CLIP baseline.

One definition each, used by training and every evaluation. Every model holds the ResNet trunk
as ``res_features`` (official name) and the frozen text "books", pathology (75, text_dim) and
anatomy (51, text_dim), as non-persistent buffers: they are not in ``state_dict`` and are
replaced with :meth:`BookModel.set_books` (e.g. eval-length prompts). Every ``Linear`` weight
starts as N(0, ``model.init_std``) (0.02: the official init); with ``model.memory_norm`` each
token of a decoder's memory is layer-normalised (no weights) before the cross-attention. Forward:
``model(images (B, 3, H, W), return_attention=False, text=None) -> ModelOutput``; the
per-token features of each stream named in ``STREAMS``:
``model.stream_tokens(images) -> {stream: (B, T, d)}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medslip.errors import MedslipError
from medslip.model.decoder import TransformerDecoder, init_weights
from medslip.model.losses import (
    clip_loss,
    existence_labels,
    existence_loss,
    icl_loss,
    position_loss,
    protocl_loss,
    sample_negatives,
    without_entities,
)
from medslip.model.trunk import build_trunk
from medslip.settings import ModelSettings
from medslip.vocab import ENTITIES, LANDMARKS

MAX_LOGIT_SCALE = math.log(100.0)
"""CLIP's cap on the learnable logit scale (temperature >= 0.01)."""


@dataclass
class ModelOutput:
    """What a forward pass gives; fields a model does not produce are None.

    ``h_*`` are decoder outputs after the final LayerNorm, before dropout; ``cl_*`` the
    ProtoCL/position queries cl_fc(Dropout H); ``attn_*`` n_layers maps (B, Q, T) when asked.
    """

    logits_p: Tensor | None = None  # (B, 75, 2); None for global_clip
    logits_a: Tensor | None = None  # (B, 51, 2)
    h_p: Tensor | None = None  # (B, 75, d_model)
    h_a: Tensor | None = None  # (B, 51, d_model)
    cl_p: Tensor | None = None  # (B, 75, text_dim)
    cl_a: Tensor | None = None  # (B, 51, text_dim)
    icl: Tensor | None = None  # (B, 51, 75) = H_a · H_pᵀ
    attn_p: list[Tensor] | None = None
    attn_a: list[Tensor] | None = None
    image_emb: Tensor | None = None  # (B, d_model), L2-normalised (global_clip)
    text_emb: Tensor | None = None  # (B, d_model), L2-normalised (global_clip, with text)


class BookModel(nn.Module):
    """Base: the trunk ``res_features`` and the text books (non-persistent buffers)."""

    STREAMS: tuple[str, ...] = ()
    """Streams whose token features ``stream_tokens`` gives (none for a global model)."""

    def __init__(
        self,
        settings: ModelSettings,
        text_dim: int,
        pathology_books: Tensor,
        anatomy_books: Tensor,
    ) -> None:
        super().__init__()
        self.text_dim = text_dim
        self.memory_norm = settings.memory_norm
        self.res_features = build_trunk(settings)
        self.register_buffer("pathology_books", torch.empty(len(ENTITIES), text_dim), False)
        self.register_buffer("anatomy_books", torch.empty(len(LANDMARKS), text_dim), False)
        self.set_books(pathology_books, anatomy_books)

    def set_books(self, pathology: Tensor, anatomy: Tensor) -> None:
        """Replace the books: pathology (75, text_dim), anatomy (51, text_dim)."""
        for name, books, rows in (
            ("pathology", pathology, len(ENTITIES)),
            ("anatomy", anatomy, len(LANDMARKS)),
        ):
            if tuple(books.shape) != (rows, self.text_dim):
                raise MedslipError(
                    f"{name} books: expected shape ({rows}, {self.text_dim}), "
                    f"got {tuple(books.shape)}"
                )
            current = getattr(self, f"{name}_books")
            setattr(self, f"{name}_books", books.detach().to(current.device, current.dtype))

    def tokens(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) -> trunk tokens (B, T = (H/16)·(W/16), C = 16·width)."""
        return self.res_features(images).flatten(2).transpose(1, 2)

    def _memory(self, z: Tensor) -> Tensor:
        """A decoder's memory (B, T, d): each token layer-normalised when ``model.memory_norm``
        (keys and values then differ between tokens from the start), else as is (official)."""
        return F.layer_norm(z, z.shape[-1:]) if self.memory_norm else z

    def _loss_inputs(self, out: ModelOutput, matrix: Tensor) -> tuple[ModelOutput, Tensor]:
        """``out`` tensors in the books' dtype (losses run in full precision, autocast or not)."""
        dtype = self.pathology_books.dtype
        cast = {
            name: value.to(dtype) if isinstance(value, Tensor) else value
            for name, value in vars(out).items()
        }
        return ModelOutput(**cast), matrix.to(self.pathology_books.device)


class MeDSLIP(BookModel):
    """The dual-stream model (the official
    `PreTrain_MeDSLIP/models/model_MeDSLIP.py`) and its ablations.

    ``disentangle``: mask generator G (off: both streams read the same tokens); ``protocl``:
    cl_fc heads and ProtoCL terms; ``icl``: the ICL term. The two decoders share one final
    LayerNorm as in the official code; it is the single module ``decoder_norm`` (one state-dict
    entry, unlike the official ``decoder_*.norm`` aliases that safetensors refuses to save).
    """

    STREAMS = ("pathology", "anatomy")

    def __init__(
        self,
        settings: ModelSettings,
        text_dim: int,
        pathology_books: Tensor,
        anatomy_books: Tensor,
        *,
        disentangle: bool,
        protocl: bool,
        icl: bool,
    ) -> None:
        super().__init__(settings, text_dim, pathology_books, anatomy_books)
        if settings.mask_activation not in ("none", "sigmoid"):
            raise MedslipError(f"model.mask_activation: unknown {settings.mask_activation!r}")
        c, d = self.res_features.out_channels, settings.d_model
        self.sigmoid_mask = settings.mask_activation == "sigmoid"
        self.protocl = protocl
        self.icl = icl
        self.mask_generator = nn.Linear(c, c) if disentangle else None
        self.res_l1_pathology = nn.Linear(c, c)
        self.res_l2_pathology = nn.Linear(c, d)
        self.res_l1_anatomy = nn.Linear(c, c)
        self.res_l2_anatomy = nn.Linear(c, d)
        self.pathology_embedding_layer = nn.Linear(text_dim, d)
        self.decoder_pathology = _decoder(settings, final_norm=False)
        self.decoder_anatomy = _decoder(settings, final_norm=False)
        self.decoder_norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(settings.dropout)
        self.classifier_pathology = nn.Linear(d, 2)
        self.classifier_anatomy = nn.Linear(d, 2)
        self.cl_fc_pathology = nn.Linear(d, text_dim) if protocl else None
        self.cl_fc_anatomy = nn.Linear(d, text_dim) if protocl else None
        init_weights(self, settings.init_std)

    def _streams(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Images -> stream inputs x_p = G⊙x, x_a = (1−G)⊙x, each (B, T, C)."""
        x = self.tokens(images)
        if self.mask_generator is None:
            return x, x
        g = self.mask_generator(x)
        if self.sigmoid_mask:
            g = g.sigmoid()
        return g * x, (1 - g) * x

    def _z_pathology(self, x_p: Tensor) -> Tensor:
        """x_p (B, T, C) -> the pathology decoder's memory res_l2(ReLU(res_l1 x_p)) (B, T, d)."""
        return self._memory(self.res_l2_pathology(F.relu(self.res_l1_pathology(x_p))))

    def _z_anatomy(self, x_a: Tensor) -> Tensor:
        """x_a (B, T, C) -> the anatomy decoder's memory res_l2(ReLU(res_l1 x_a)) (B, T, d)."""
        return self._memory(self.res_l2_anatomy(F.relu(self.res_l1_anatomy(x_a))))

    def stream_tokens(self, images: Tensor) -> dict[str, Tensor]:
        """(B, 3, H, W) -> {"pathology", "anatomy": the stream's decoder memory, one feature
        per token (B, T, d_model)}."""
        x_p, x_a = self._streams(images)
        return {"pathology": self._z_pathology(x_p), "anatomy": self._z_anatomy(x_a)}

    def _pathology(self, x_p: Tensor, return_attention: bool) -> tuple[Tensor, list | None]:
        """x_p (B, T, C) -> H_p (B, 75, d) and the pathology decoder's maps."""
        z = self._z_pathology(x_p)
        queries = self.pathology_embedding_layer(self.pathology_books).expand(len(z), -1, -1)
        h, maps = self.decoder_pathology(queries, z, return_attention)
        return self.decoder_norm(h), maps

    def _anatomy(self, x_a: Tensor, return_attention: bool) -> tuple[Tensor, list | None]:
        """x_a (B, T, C) -> H_a (B, 51, d) and the anatomy decoder's maps."""
        z = self._z_anatomy(x_a)
        queries = self.pathology_embedding_layer(self.anatomy_books).expand(len(z), -1, -1)
        h, maps = self.decoder_anatomy(queries, z, return_attention)
        return self.decoder_norm(h), maps

    def forward(
        self, images: Tensor, return_attention: bool = False, text: Tensor | None = None
    ) -> ModelOutput:
        """Both streams; ``text`` is ignored (the queries are the books)."""
        x_p, x_a = self._streams(images)
        h_p, attn_p = self._pathology(x_p, return_attention)
        h_a, attn_a = self._anatomy(x_a, return_attention)
        drop_p, drop_a = self.dropout(h_p), self.dropout(h_a)
        return ModelOutput(
            logits_p=self.classifier_pathology(drop_p),
            logits_a=self.classifier_anatomy(drop_a),
            h_p=h_p,
            h_a=h_a,
            cl_p=self.cl_fc_pathology(drop_p) if self.protocl else None,
            cl_a=self.cl_fc_anatomy(drop_a) if self.protocl else None,
            icl=h_a @ h_p.transpose(1, 2) if self.icl else None,
            attn_p=attn_p,
            attn_a=attn_a,
        )

    def existence(
        self, images: Tensor, return_attention: bool = False
    ) -> tuple[Tensor, list[Tensor] | None]:
        """(B, 3, H, W) -> P(present) (B, 75) (softmax class 1) and, if asked, the pathology
        decoder's maps, n_layers x (B, 75, T): the pathology stream alone, as forward gives
        them."""
        h_p, maps = self._pathology(self._streams(images)[0], return_attention)
        return self.classifier_pathology(self.dropout(h_p)).softmax(dim=-1)[..., 1], maps

    def existence_probability(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) -> P(present) (B, 75): softmax class 1, pathology stream only."""
        return self.existence(images)[0]

    def loss(
        self,
        out: ModelOutput,
        matrix: Tensor,
        generator: torch.Generator,
        alpha: float,
        beta: float,
        n_negatives: int,
        exclude: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Terms exist_p, exist_a (+ protocl_p, protocl_a) (+ icl) and
        total = exist_p + exist_a + alpha·(protocl_p + protocl_a) + beta·icl.

        matrix (B, 51, 75) long in {-1, 0, 1}; negatives drawn with ``generator``
        (pathology stream first, then anatomy); ``exclude`` (K,) entity indices left out of
        exist_p and protocl_p (the official ``exclude_class``; ICL and the anatomy stream keep
        them).
        """
        with torch.autocast(matrix.device.type, enabled=False):
            out, matrix = self._loss_inputs(out, matrix)
            e_p, e_a = existence_labels(matrix)
            e_p, pos_p = without_entities(e_p, (matrix == 1).transpose(1, 2), exclude)
            terms = {
                "exist_p": existence_loss(out.logits_p, e_p),
                "exist_a": existence_loss(out.logits_a, e_a),
            }
            total = terms["exist_p"] + terms["exist_a"]
            if self.protocl:
                pos_a = matrix == 1
                neg_p = sample_negatives(~pos_p, n_negatives, generator)
                neg_a = sample_negatives(~pos_a, n_negatives, generator)
                terms["protocl_p"] = protocl_loss(out.cl_p, pos_p, self.anatomy_books, *neg_p)
                terms["protocl_a"] = protocl_loss(out.cl_a, pos_a, self.pathology_books, *neg_a)
                total = total + alpha * (terms["protocl_p"] + terms["protocl_a"])
            if self.icl:
                terms["icl"] = icl_loss(out.icl, matrix)
                total = total + beta * terms["icl"]
            terms["total"] = total
        return terms


class MedKLIP(BookModel):
    """The single-stream base (MedKLIP's `PreTrain_MedKLIP/models/model_MedKLIP.py`): 75 entity
    queries over res_l2(ReLU(res_l1 x))."""

    STREAMS = ("pathology",)

    def __init__(
        self,
        settings: ModelSettings,
        text_dim: int,
        pathology_books: Tensor,
        anatomy_books: Tensor,
    ) -> None:
        super().__init__(settings, text_dim, pathology_books, anatomy_books)
        c, d = self.res_features.out_channels, settings.d_model
        self.res_l1 = nn.Linear(c, c)
        self.res_l2 = nn.Linear(c, d)
        self.disease_embedding_layer = nn.Linear(text_dim, d)
        self.decoder = _decoder(settings, final_norm=True)
        self.dropout = nn.Dropout(settings.dropout)
        self.classifier = nn.Linear(d, 2)
        self.cl_fc = nn.Linear(d, text_dim)
        init_weights(self, settings.init_std)

    def _z(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) -> the decoder's memory res_l2(ReLU(res_l1 tokens)) (B, T, d)."""
        return self._memory(self.res_l2(F.relu(self.res_l1(self.tokens(images)))))

    def stream_tokens(self, images: Tensor) -> dict[str, Tensor]:
        """(B, 3, H, W) -> {"pathology": the decoder memory, one feature per token
        (B, T, d_model)} (the single stream)."""
        return {"pathology": self._z(images)}

    def _pathology(self, images: Tensor, return_attention: bool) -> tuple[Tensor, list | None]:
        z = self._z(images)
        queries = self.disease_embedding_layer(self.pathology_books).expand(len(z), -1, -1)
        return self.decoder(queries, z, return_attention)

    def forward(
        self, images: Tensor, return_attention: bool = False, text: Tensor | None = None
    ) -> ModelOutput:
        """The entity stream; ``text`` is ignored."""
        h, attn = self._pathology(images, return_attention)
        drop = self.dropout(h)
        return ModelOutput(
            logits_p=self.classifier(drop), h_p=h, cl_p=self.cl_fc(drop), attn_p=attn
        )

    def existence(
        self, images: Tensor, return_attention: bool = False
    ) -> tuple[Tensor, list[Tensor] | None]:
        """(B, 3, H, W) -> P(present) (B, 75) (softmax class 1) and, if asked, the decoder's
        maps, n_layers x (B, 75, T)."""
        h, maps = self._pathology(images, return_attention)
        return self.classifier(self.dropout(h)).softmax(dim=-1)[..., 1], maps

    def existence_probability(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) -> P(present) (B, 75): softmax class 1."""
        return self.existence(images)[0]

    def loss(
        self,
        out: ModelOutput,
        matrix: Tensor,
        generator: torch.Generator,
        alpha: float,
        beta: float,
        n_negatives: int,
        exclude: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Terms exist_p, position; total = exist_p + alpha·position (``beta`` unused).

        Position: per positive entity, one random positive landmark (slot 0) against
        ``n_negatives`` landmarks with M ≠ 1, CE with target 0, drawn with ``generator``;
        ``exclude`` (K,) entity indices left out of both terms (``exclude_class``).
        """
        with torch.autocast(matrix.device.type, enabled=False):
            out, matrix = self._loss_inputs(out, matrix)
            e_p, _ = existence_labels(matrix)
            e_p, positive = without_entities(e_p, (matrix == 1).transpose(1, 2), exclude)
            chosen, _ = sample_negatives(positive, 1, generator)  # one random positive
            negatives = sample_negatives(~positive, n_negatives, generator)
            terms = {
                "exist_p": existence_loss(out.logits_p, e_p),
                "position": position_loss(
                    out.cl_p, positive, self.anatomy_books, chosen[..., 0], *negatives
                ),
            }
            terms["total"] = terms["exist_p"] + alpha * terms["position"]
        return terms


class GlobalCLIP(BookModel):
    """ConVIRT/CLIP-style baseline: mean-pooled trunk tokens vs a projected report embedding.

    Image: mean of the tokens -> ``image_projection`` -> d_model. Text: a report embedding
    (B, text_dim) from the frozen encoder -> ``text_projection`` -> d_model. Symmetric InfoNCE
    on L2-normalised embeddings; learnable ``logit_scale`` = log(1 / clip_temperature) at init,
    clamped to [0, log 100] where used (CLIP's bounds, applied in the forward, not in place).
    """

    def __init__(
        self,
        settings: ModelSettings,
        text_dim: int,
        pathology_books: Tensor,
        anatomy_books: Tensor,
        clip_temperature: float,
    ) -> None:
        super().__init__(settings, text_dim, pathology_books, anatomy_books)
        self.image_projection = nn.Linear(self.res_features.out_channels, settings.d_model)
        self.text_projection = nn.Linear(text_dim, settings.d_model)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / clip_temperature)))
        init_weights(self, settings.init_std)

    def _image(self, images: Tensor) -> Tensor:
        return F.normalize(self.image_projection(self.tokens(images).mean(dim=1)), dim=-1)

    def forward(
        self, images: Tensor, return_attention: bool = False, text: Tensor | None = None
    ) -> ModelOutput:
        """Image embedding, and the text embedding when ``text`` (B, text_dim) is given. There
        are no attention maps (``return_attention`` is ignored)."""
        text_emb = None if text is None else F.normalize(self.text_projection(text), dim=-1)
        return ModelOutput(image_emb=self._image(images), text_emb=text_emb)

    def existence_probability(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, 75) zero-shot score (1 + cos) / 2 in [0, 1] between the image
        embedding and each projected pathology book (monotone in the cosine, so rankings and
        AUC equal the CLIP logits'; no saturation as a sigmoid of the scaled cosine would)."""
        books = F.normalize(self.text_projection(self.pathology_books), dim=-1)
        return (1 + self._image(images) @ books.T) / 2

    def loss(
        self,
        out: ModelOutput,
        matrix: Tensor,
        generator: torch.Generator,
        alpha: float,
        beta: float,
        n_negatives: int,
        exclude: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Term clip (= total); needs ``out`` from a forward with ``text``. The label matrix,
        generator, alpha, beta, n_negatives and exclude are unused."""
        if out.text_emb is None:
            raise MedslipError("global_clip: the loss needs a forward pass with text=")
        with torch.autocast(matrix.device.type, enabled=False):
            out, _ = self._loss_inputs(out, matrix)
            scale = self.logit_scale.clamp(0.0, MAX_LOGIT_SCALE)
            clip = clip_loss(out.image_emb, out.text_emb, scale)
        return {"clip": clip, "total": clip}


def _decoder(settings: ModelSettings, final_norm: bool) -> TransformerDecoder:
    return TransformerDecoder(
        settings.d_model,
        settings.n_heads,
        settings.d_ffn,
        settings.dropout,
        settings.n_layers,
        final_norm=final_norm,
        init_std=settings.init_std,
        positions=settings.positions,
    )

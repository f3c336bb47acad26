"""Small embedding models the tests build themselves, in the layouts real models use, so
that the real folder loaders run with no hub and no download: a WordPiece tokenizer
trained on a few sentences, a Model2Vec-style static model, an ONNX export (a token
embedding, a dense layer and tanh, written with onnx.helper) and a sentence-transformers
model (a one-layer BERT). Each comes with the numbers it must give, computed here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

SENTENCES = [
    "the team won the football match",
    "the striker scored a late goal",
    "stocks fell sharply on the market",
    "the bank raised interest rates",
    "heavy rain and strong wind tonight",
    "the forecast says sunny skies",
    "a cat sat on the mat",
]


def wordpiece_tokenizer() -> Any:
    """A BERT-style tokenizer (lower case, [CLS] ... [SEP]) trained on SENTENCES."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=200, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    )
    tokenizer.train_from_iterator(SENTENCES, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[
            ("[CLS]", tokenizer.token_to_id("[CLS]")),
            ("[SEP]", tokenizer.token_to_id("[SEP]")),
        ],
    )
    return tokenizer


def normalised(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms == 0, 1, norms)).astype(np.float32)


class StaticModel:
    """Model2Vec's layout: config.json, model.safetensors ('embeddings'), tokenizer.json."""

    def __init__(self, folder: Path, dimension: int = 8, seed: int = 0):
        from safetensors.numpy import save_file

        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer = wordpiece_tokenizer()
        vocabulary = self.tokenizer.get_vocab_size()
        self.matrix = np.random.default_rng(seed).normal(size=(vocabulary, dimension))
        self.matrix = self.matrix.astype(np.float32)
        save_file({"embeddings": self.matrix}, str(folder / "model.safetensors"))
        self.tokenizer.save(str(folder / "tokenizer.json"))
        config = {"model_type": "model2vec", "normalize": True, "hidden_dim": dimension}
        (folder / "config.json").write_text(json.dumps(config))
        self.folder = folder
        self.unknown = self.tokenizer.token_to_id("[UNK]")

    def expected(self, texts: list[str]) -> np.ndarray:
        rows = []
        for text in texts:
            ids = self.tokenizer.encode(text, add_special_tokens=False).ids
            ids = [i for i in ids if i != self.unknown]
            rows.append(self.matrix[ids].sum(axis=0) if ids else np.zeros(self.matrix.shape[1]))
        return normalised(np.array(rows))


class OnnxModel:
    """A BERT-like ONNX export in sentence-transformers' layout: onnx/model.onnx with inputs
    input_ids, attention_mask and token_type_ids and output last_hidden_state
    (tanh(token + type embedding, times a dense matrix)), tokenizer.json, modules.json and
    1_Pooling/config.json."""

    def __init__(self, folder: Path, dimension: int = 8, pooling: str = "mean", seed: int = 1):
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        folder.mkdir(parents=True, exist_ok=True)
        (folder / "onnx").mkdir(exist_ok=True)
        (folder / "1_Pooling").mkdir(exist_ok=True)
        self.tokenizer = wordpiece_tokenizer()
        rng = np.random.default_rng(seed)
        vocabulary = self.tokenizer.get_vocab_size()
        self.tokens = rng.normal(size=(vocabulary, dimension)).astype(np.float32)
        self.types = rng.normal(size=(2, dimension)).astype(np.float32)
        self.dense = rng.normal(size=(dimension, dimension)).astype(np.float32)
        self.pooling = pooling
        nodes = [
            helper.make_node("Gather", ["tokens", "input_ids"], ["token_vectors"]),
            helper.make_node("Gather", ["types", "token_type_ids"], ["type_vectors"]),
            helper.make_node("Add", ["token_vectors", "type_vectors"], ["summed"]),
            helper.make_node("MatMul", ["summed", "dense"], ["projected"]),
            helper.make_node("Tanh", ["projected"], ["last_hidden_state"]),
        ]
        inputs = [
            helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
            for name in ("input_ids", "attention_mask", "token_type_ids")
        ]
        output = helper.make_tensor_value_info(
            "last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", dimension]
        )
        initializers = [
            numpy_helper.from_array(self.tokens, "tokens"),
            numpy_helper.from_array(self.types, "types"),
            numpy_helper.from_array(self.dense, "dense"),
        ]
        graph = helper.make_graph(nodes, "tiny_bert", inputs, [output], initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        onnx.save(model, str(folder / "onnx" / "model.onnx"))
        self.tokenizer.save(str(folder / "tokenizer.json"))
        (folder / "modules.json").write_text(
            json.dumps([{"idx": 0, "name": "0", "path": "", "type": "Transformer"}])
        )
        modes = {"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token"}
        pooling_config = {"word_embedding_dimension": dimension, modes[pooling]: True}
        (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling_config))
        self.folder = folder

    def expected(self, texts: list[str]) -> np.ndarray:
        rows = []
        for text in texts:
            encoding = self.tokenizer.encode(text)
            hidden = np.tanh(
                (self.tokens[encoding.ids] + self.types[encoding.type_ids]) @ self.dense
            )
            rows.append(hidden[0] if self.pooling == "cls" else hidden.mean(axis=0))
        return normalised(np.array(rows))


def sentence_transformers_model(folder: Path, dimension: int = 16) -> Any:
    """A one-layer BERT with mean pooling saved by sentence-transformers itself; returns the
    library's own model (for the numbers it gives)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    base = folder.parent / (folder.name + "-bert")
    tokenizer = BertTokenizerFast(tokenizer_object=wordpiece_tokenizer())
    tokenizer.save_pretrained(str(base))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=dimension,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * dimension,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(str(base))
    try:  # sentence-transformers 6 moved them
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:
        from sentence_transformers.models import Pooling, Transformer

    transformer = Transformer(str(base), max_seq_length=32)
    pooling = Pooling(dimension, pooling_mode="mean")
    model = SentenceTransformer(modules=[transformer, pooling], device="cpu")
    model.save(str(folder))
    return model

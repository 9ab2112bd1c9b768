"""ps8's shipped data and pretrained encoder (mfml_grader/pretrain.py): a fair split, an encoder
that learned something, and a pretraining loop that learns."""

import json
import math
from collections import Counter

import pytest
import torch

from course_fixture import REPO
from mfml_grader import course, pretrain

DATA = course.source_notebook(pretrain.ASSIGNMENT, REPO).parent / "data"


@pytest.fixture(scope="module")
def notebook():
    """The names the notebook's data, encoder and masked-LM cells define, and its shipped checkpoint."""
    namespace = pretrain.run_cells(pretrain.TOKENIZER + pretrain.MODEL + ("load_encoder",), {"__name__": "__main__"}, REPO)
    return namespace


def test_split_is_fair():
    data = json.loads((DATA / "sentences.json").read_text())
    real = {split: [text for text, label in data[split] if label == 0] for split in ("train", "test")}
    shuffled = {split: [text for text, label in data[split] if label == 1] for split in ("train", "test")}
    assert not set(real["test"]) & set(real["train"]), "a test sentence is also a training (pretraining) sentence"
    for split in ("train", "test"):
        assert abs(len(real[split]) - len(shuffled[split])) <= 1, f"{split}: real and shuffled sentences should be balanced"
    # a shuffled sentence has the words of a real one: only their order tells them apart
    words = {tuple(sorted(text.split())) for text, _ in data["train"] + data["test"]}
    assert all(tuple(sorted(text.split())) in words for text in shuffled["test"])
    assert len(data["vocab"]) == pretrain.VOCAB_SIZE and len(set(data["vocab"])) == len(data["vocab"])


def test_shipped_encoder_matches_the_data_and_learned(notebook):
    ns = notebook
    assert ns["checkpoint"]["state"]["tok.weight"].shape[0] == len(ns["itos"]), "encoder.pt was made with another vocabulary"
    ids, pad = ns["encode"]([text for text, label in ns["data"]["test"] if label == 0])
    inputs, labels = ns["mask_tokens"](ids, 0.15, ns["MASK"], len(ns["itos"]), torch.Generator().manual_seed(0))
    inputs, labels = inputs.masked_fill(pad, ns["PAD"]), labels.masked_fill(pad, -100)
    with torch.no_grad():
        loss = ns["masked_lm_loss"](ns["encoder"].mlm_logits(ns["encoder"](inputs, pad)), labels).item()
    assert loss < 0.75 * math.log(len(ns["itos"])), f"the shipped encoder's masked-LM loss on unseen sentences is {loss:.2f}"


def test_pretraining_learns_with_the_schedule(notebook):
    ns = notebook
    texts = [text for text, label in ns["data"]["train"] if label == 0]
    _, losses, rates = pretrain.pretrain(ns, texts, steps=60, batch=16, max_lr=3e-3, warmup_steps=10,
                                         weight_decay=0.01, mask_prob=0.15, seed=0)
    assert rates[0] == 0 and rates[10] == pytest.approx(3e-3), "the learning rate warms up from 0 to max_lr in 10 steps"
    assert sum(losses[-10:]) / 10 < losses[0] - 1.0, f"60 steps should lower the masked-LM loss by a nat or more: {losses[0]:.2f} -> {losses[-1]:.2f}"


def test_make_data_labels_half_shuffled(notebook):
    data, corpus = pretrain.make_data(REPO, notebook["tokens"])
    assert Counter(label for _, label in data["test"]) == Counter({0: (len(data["test"]) + 1) // 2, 1: len(data["test"]) // 2})
    test_real = {text for text, label in data["test"] if label == 0}
    assert not test_real & set(corpus), "the pretraining text must not contain a test sentence"

"""ps8's data and pretrained encoder, made from the course itself (`make pretrain`, `python -m mfml_grader pretrain`).

The task: is a sentence of the course real, or are its words shuffled? The sentences are those of
the explanations (markdown) of the other problem sets, split once into training and test
sentences; half of each split is shuffled (`data/sentences.json`). A bag of words cannot tell the
two apart: only a model that knows how sentences go can. The encoder is the notebook's own,
pretrained with the masked-LM objective on unlabelled text (the real training sentences and the
docstrings of the installed torch, whose version is pinned), with the notebook's own solutions
(`mask_tokens`, `masked_lm_loss`, `linear_warmup_decay_lr`) and AdamW (`data/encoder.pt`); it
never reads a test sentence. Deterministic: one thread, seeded; both files are small and shipped.
"""

import ast
import contextlib
import json
import random
import re
from collections import Counter
from pathlib import Path

from . import course

ASSIGNMENT = "ps8_fine_tuning"
TEST_FRACTION = 0.3
MIN_CHARS, MAX_CHARS = 40, 400       # shorter: a heading or a fragment; longer: a table or a formula block
VOCAB_SIZE = 2000                    # the most frequent tokens of the pretraining text; the rest are [UNK]
DOCS = ("_torch_docs.py", "_tensor_docs.py", "nn/functional.py", "nn/modules/*.py", "optim/*.py",
        "distributions/*.py", "linalg/__init__.py", "autograd/__init__.py", "functional.py")
TOKENIZER = ("setup", "tokenize")
MODEL = ("dataset", "encoder_model", "mask_tokens", "masked_lm_loss", "linear_warmup_decay_lr")
SETTINGS = {"steps": 10000, "batch": 32, "max_lr": 3e-3, "warmup_steps": 100, "weight_decay": 0.01,
            "mask_prob": 0.15, "seed": 0}


def topic(assignment):
    """'ps1_linear_algebra' -> 'linear algebra'."""
    return assignment.split("_", 1)[1].replace("_", " ")


def sentences(notebook):
    """The sentences of a notebook's markdown cells, one line each, without markup that is only layout."""
    import nbformat

    text = "\n".join(cell.source for cell in nbformat.read(notebook, as_version=4).cells if cell.cell_type == "markdown")
    text = re.sub(r"\s+", " ", re.sub(r"^#+ |^\s*[-|>*] ", " ", text, flags=re.M))
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z`$*(])", text) if MIN_CHARS <= len(s.strip()) <= MAX_CHARS]


def shuffled(text, rng):
    words = text.split()
    rng.shuffle(words)
    return " ".join(words)


def torch_docs():
    """The sentences of the long docstrings of the installed torch's math, tensor, nn, optim and distributions."""
    import torch

    package = Path(torch.__file__).parent
    found = []
    for pattern in DOCS:
        for path in sorted(package.glob(pattern)):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) > 200:
                    found += [s for s in re.split(r"(?<=[.!?])\s+|\n\s*\n", node.value) if len(s) >= MIN_CHARS]
    return found


def make_data(root, tokens):
    """({"classes", "vocab", "train", "test"}, pretraining texts): sentences found in exactly one other
    problem set, split per problem set; half of each split shuffled (label 1). `tokens`: the notebook's tokenizer."""
    others = [a for a in course.assignments(root) if a != ASSIGNMENT]
    found = {a: sentences(course.source_notebook(a, root)) for a in others}
    seen = Counter(s for a in others for s in set(found[a]))
    rng = random.Random(0)
    train, test = [], []
    for assignment in others:
        unique = sorted({s for s in found[assignment] if seen[s] == 1})
        rng.shuffle(unique)
        cut = round(len(unique) * TEST_FRACTION)
        test += unique[:cut]
        train += unique[cut:]
    corpus = train + torch_docs()
    counts = Counter(token for text in corpus for token in tokens(text))
    vocab = sorted(token for token, _ in counts.most_common(VOCAB_SIZE))

    def labelled(texts):
        rows = [[shuffled(text, rng), 1] if i % 2 else [text, 0] for i, text in enumerate(texts)]
        rng.shuffle(rows)
        return rows

    return {"classes": ["real", "shuffled"], "vocab": vocab, "train": labelled(train), "test": labelled(test)}, corpus


def run_cells(grade_ids, namespace, root):
    """Run the notebook's cells `grade_ids` in its folder, in `namespace` (the names they define stay there)."""
    import nbformat

    notebook = course.source_notebook(ASSIGNMENT, root)
    cells = {course.grade_id(cell): cell.source for cell in nbformat.read(notebook, as_version=4).cells}
    with contextlib.chdir(notebook.parent):
        for grade_id in grade_ids:
            exec(compile(cells[grade_id], f"<{ASSIGNMENT}:{grade_id}>", "exec"), namespace)
    return namespace


def pretrain(namespace, texts, steps, batch, max_lr, warmup_steps, weight_decay, mask_prob, seed, progress=None):
    """(encoder, [training loss], [learning rate]): masked-LM pretraining on `texts`."""
    import torch

    ns = namespace
    torch.manual_seed(seed)
    model = ns["Encoder"](len(ns["itos"]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=max_lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    losses, rates = [], []
    for step in range(steps):
        rows = torch.randint(len(texts), (batch,), generator=generator).tolist()
        ids, pad = ns["encode"]([texts[i] for i in rows])                                   # (B, T)
        inputs, labels = ns["mask_tokens"](ids, mask_prob, ns["MASK"], len(ns["itos"]), generator)
        inputs = inputs.masked_fill(pad, ns["PAD"])                                          # padding is never a question
        labels = labels.masked_fill(pad, -100)
        lr = ns["linear_warmup_decay_lr"](step, max_lr, warmup_steps, steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = ns["masked_lm_loss"](model.mlm_logits(model(inputs, pad)), labels)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(round(loss.item(), 4))
        rates.append(lr)
        if progress:
            progress(step)
    return model, losses, rates


def main(root, steps=None):
    """Write data/sentences.json, then pretrain and write data/encoder.pt (about 7 minutes on one thread)."""
    import torch

    from .judge.batch import ProgressBar

    folder = course.source_notebook(ASSIGNMENT, root).parent / "data"
    folder.mkdir(exist_ok=True)
    namespace = run_cells(TOKENIZER, {"__name__": "__main__"}, root)
    data, corpus = make_data(root, namespace["tokens"])
    (folder / "sentences.json").write_text(json.dumps(data, indent=0, ensure_ascii=False) + "\n")
    print(f"{len(data['train'])} training and {len(data['test'])} test sentences, {len(corpus)} pretraining texts")
    settings = dict(SETTINGS, steps=steps or SETTINGS["steps"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_cells(MODEL, namespace, root)
        bar = ProgressBar(settings["steps"], "pretraining", unit="steps")
        model, losses, rates = pretrain(namespace, corpus, **settings, progress=lambda step: bar.show(step + 1, step + 1 == settings["steps"]))
    finally:
        torch.set_num_threads(threads)
    config = {"d_model": model.tok.embedding_dim, "n_heads": model.blocks[0].n_heads, "n_layers": len(model.blocks)}
    torch.save({"config": config, "state": model.state_dict(), "steps": settings["steps"], "settings": settings,
                "loss": losses, "lr": rates}, folder / "encoder.pt")
    print(f"wrote {folder / 'encoder.pt'}: final training loss {sum(losses[-50:]) / 50:.3f}")


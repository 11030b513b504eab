"""Writes the small sample files in this folder (run once; the outputs are committed).

The sentences are made up here from word lists, so the files carry no one else's text.
    python sample_data/make_samples.py
"""

import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(7)

NAMES = ["Mara", "Tobin", "Ilse", "Corin", "Wren", "Osric", "Lena", "Pell"]
PLACES = ["the harbour", "the old mill", "the north road", "the market", "the river bank", "the tower"]
VERBS = ["walked to", "waited by", "sang near", "slept at", "looked for the lamp at", "counted boats at"]
TIMES = ["at dawn", "before supper", "in the rain", "under the moon", "after the bells", "all day"]
THINGS = ["a letter", "the key", "bread and salt", "a blue coat", "the last candle", "an old map"]


def line():
    kind = rng.random()
    if kind < 0.4:
        return f"{rng.choice(NAMES)} {rng.choice(VERBS)} {rng.choice(PLACES)} {rng.choice(TIMES)}."
    if kind < 0.7:
        return f"{rng.choice(NAMES)} gave {rng.choice(THINGS)} to {rng.choice(NAMES)}."
    return f"Where is {rng.choice(THINGS)}? asked {rng.choice(NAMES)}."


def write_corpus():
    paragraphs = []
    for _ in range(300):
        speaker = rng.choice(NAMES).upper()
        body = "\n".join(line() for _ in range(rng.randint(1, 4)))
        paragraphs.append(f"{speaker}:\n{body}\n")
    with open(os.path.join(HERE, "corpus.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(paragraphs))


POS = ["a warm and funny film", "the cast is wonderful", "i loved every minute", "a bright , clever story",
       "beautifully shot and moving", "the best thing i saw this year", "sharp writing and great music"]
NEG = ["a dull and lifeless film", "the plot makes no sense", "i was bored the whole time", "a tired , silly story",
       "badly acted and far too long", "the worst thing i saw this year", "flat writing and awful music"]
GLUE = ["", "honestly , ", "overall , ", "in the end , "]


def write_reviews():
    rows = []
    for _ in range(400):
        label = rng.choice(["positive", "negative"])
        text = rng.choice(GLUE) + rng.choice(POS if label == "positive" else NEG)
        rows.append(f"{label}\t{text}")
    with open(os.path.join(HERE, "reviews.tsv"), "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")


CITIES = ["Velmora", "Quint", "Arden Falls", "Port Ysle"]
ORGS = ["Halden Bank", "the Tern Society", "Corvid Labs"]


def write_ner():
    sents = []
    for _ in range(300):
        person = rng.choice(NAMES)
        city = rng.choice(CITIES).split()
        org = rng.choice(ORGS).split()
        pattern = rng.random()
        toks = []
        if pattern < 0.5:
            toks += [(person, "B-PER"), ("moved", "O"), ("to", "O")]
            toks += [(w, ("B-LOC" if i == 0 else "I-LOC")) for i, w in enumerate(city)]
        else:
            toks += [(w, "O") if w == "the" else (w, "B-ORG" if i == 0 or org[0] == "the" and i == 1 else "I-ORG")
                     for i, w in enumerate(org)]
            toks += [("hired", "O"), (person, "B-PER"), ("in", "O")]
            toks += [(w, ("B-LOC" if i == 0 else "I-LOC")) for i, w in enumerate(city)]
        toks.append((".", "O"))
        sents.append("\n".join(f"{w}\t{t}" for w, t in toks))
    with open(os.path.join(HERE, "ner.conll"), "w", encoding="utf-8") as f:
        f.write("\n\n".join(sents) + "\n")


if __name__ == "__main__":
    write_corpus()
    write_reviews()
    write_ner()

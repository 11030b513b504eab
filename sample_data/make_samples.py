"""Writes the small sample files in this folder (run once; the outputs are committed).

The sentences are made up here from word lists, so the files carry no one else's text.
    python sample_data/make_samples.py
"""

import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random()  # each writer seeds it, so that each file can be remade alone

NAMES = ["Mara", "Tobin", "Ilse", "Corin", "Wren", "Osric", "Lena", "Pell", "Bram", "Edda", "Fenn", "Isolde",
         "Jory", "Katrin", "Lio", "Marek", "Nessa", "Orrin", "Petra", "Quill", "Rowan", "Sable", "Tamsin", "Ulric"]
PLACES = ["the harbour", "the old mill", "the north road", "the market", "the river bank", "the tower",
          "the chapel", "the bakery", "the east gate", "the orchard", "the ferry", "the lighthouse", "the inn",
          "the stables", "the bridge", "the well", "the schoolhouse", "the quarry", "the salt marsh", "the hill fort"]
VERBS = ["walked to", "waited by", "sang near", "slept at", "looked for the lamp at", "counted boats at",
         "ran past", "hid behind", "painted", "swept", "guarded", "left a note at", "played the fiddle at",
         "mended nets at", "read aloud at", "lost a glove at", "argued near", "fed the geese at"]
TIMES = ["at dawn", "before supper", "in the rain", "under the moon", "after the bells", "all day",
         "at noon", "in the fog", "on market day", "before the storm", "at low tide", "late at night",
         "in the first snow", "while the kettle boiled"]
ADJECTIVES = ["blue", "heavy", "cracked", "silver", "tiny", "borrowed", "muddy", "warm", "crooked", "painted",
              "folded", "forgotten", "bright", "wet", "sealed"]
THINGS = ["letter", "key", "loaf", "coat", "candle", "map", "lantern", "basket", "ribbon", "kettle", "rope",
          "bell", "compass", "scarf", "knife", "ledger", "cup", "drum", "shawl", "oar"]
FEELINGS = ["laughed", "sighed", "frowned", "shrugged", "smiled", "whispered", "shouted", "nodded", "hummed"]
REASONS = ["because the tide was turning", "because nobody else would", "for the sake of the old days",
           "since the road was closed", "though the wind was cold", "as the fire went out", "while the dogs barked",
           "before anyone could stop them", "as if nothing had happened"]


def thing():
    return f"the {rng.choice(ADJECTIVES)} {rng.choice(THINGS)}"


def line():
    """One line of the play: every kind has four or more free slots, so the corpus holds a sliver
    of the lines its grammar can make, and a model that writes new lines is not copying."""
    kind = rng.random()
    if kind < 0.3:
        text = f"{rng.choice(NAMES)} {rng.choice(VERBS)} {rng.choice(PLACES)} {rng.choice(TIMES)}"
    elif kind < 0.5:
        text = f"{rng.choice(NAMES)} gave {thing()} to {rng.choice(NAMES)} at {rng.choice(PLACES)}"
    elif kind < 0.65:
        return f"Where is {thing()}? asked {rng.choice(NAMES)}, and {rng.choice(FEELINGS)}."
    elif kind < 0.8:
        text = f"{rng.choice(NAMES)} {rng.choice(FEELINGS)} and {rng.choice(VERBS)} {rng.choice(PLACES)}"
    else:
        return f"I left {thing()} at {rng.choice(PLACES)} {rng.choice(TIMES)}, said {rng.choice(NAMES)}."
    if rng.random() < 0.35:
        text += " " + rng.choice(REASONS)
    return text + "."


def write_corpus():
    rng.seed(7)
    paragraphs = []
    for _ in range(450):
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
    rng.seed(8)
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
    rng.seed(9)
    sents = []
    for _ in range(300):
        person = rng.choice(NAMES[:8])
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

"""Which option of which command applies to which task: the one table that says so.

An option a model's task cannot use is refused in one line naming the option and the task, never
silently ignored (`predict --proba` on a regression used to print plain numbers without a word).
Options missing from a command's table apply to every task it accepts. Whether a command reads a
task at all (sample reads language models, predict does not) is the command's own first check.

Train's options are the configuration's fields: the command line and a config file alike; a field
counts as given when it differs from its default (config.py).
"""

from rnncli.errors import UsageError
from rnncli.tasks.registry import TASKS

LM, CLM, CLASSIFY, TAG, REGRESS, SEQ2SEQ, CAPTION = "lm", "clm", "classify", "tag", "regress", "seq2seq", "caption"
DECODER = (SEQ2SEQ, CAPTION)  # the tasks that decode their output (decode.py)
NAMES = {name: task.title for name, task in TASKS.items()}  # what messages call a model of each

DECODING = ("--beam", "--length-penalty", "--n-best", "--greedy", "--temp", "--top-k", "--top-p", "--seed",
            "--max-source-len", "--too-long")

APPLIES = {
    "train": {
        "--char-features": (TAG,), "--char-encoder": (TAG,), "--char-embed": (TAG,), "--char-hidden": (TAG,),
        "--crf": (TAG,),
        "--word-dropout": (CLASSIFY, TAG, REGRESS),
        "--pool": (CLASSIFY, REGRESS),
        "--attention": DECODER, "--beam": DECODER, "--length-penalty": DECODER, "--decode-valid": DECODER,
        "--label-dropout": (CLM,),
        "--seq-len": (LM, CLM),
    },
    "predict": {"--proba": (CLASSIFY, TAG), **{option: DECODER for option in DECODING}},
    "eval": {"--beam": DECODER, "--length-penalty": DECODER, "--max-source-len": DECODER},
    "sample": {"--label": (CLM,), "--guidance": (CLM,)},
    "show": {"--unit": (LM, CLM), "--gate": (LM, CLM), "--top": (LM, CLM), "--label": (CLM,)},
}


def check_options(command, task, given):
    """Refuse the first option in `given` (flags as users type them) that `command` does not apply
    to a model of `task`."""
    table = APPLIES[command]
    for option in given:
        tasks = table.get(option)
        if tasks is not None and task not in tasks:
            name = NAMES[task]
            article = "an" if name[0] in "aeiou" else "a"
            raise UsageError(f"{option} does not apply to {article} {name}: {command} uses it for "
                             f"{' and '.join(NAMES[t] + 's' for t in tasks)} only")


def train_options_given(cfg):
    """The train options a configuration sets away from their defaults, as flags (--crf)."""
    import dataclasses

    return [f"--{f.name.replace('_', '-')}" for f in dataclasses.fields(cfg)
            if getattr(cfg, f.name) != f.default]

"""The tasks by the names checkpoints and commands carry: a new task is its module (its model and
its Task, task.py) and one line here."""

from rnncli.tasks.caption import CaptionTask
from rnncli.tasks.classify import ClassifierTask
from rnncli.tasks.conditional_lm import ConditionalLanguageModelTask
from rnncli.tasks.lm import LanguageModelTask
from rnncli.tasks.regress import RegressionTask
from rnncli.tasks.seq2seq import EncoderDecoderTask
from rnncli.tasks.tag import TaggerTask

TASKS = {task.name: task for task in (LanguageModelTask(), ConditionalLanguageModelTask(), ClassifierTask(),
                                       TaggerTask(), EncoderDecoderTask(), RegressionTask(), CaptionTask())}


def task_named(name):
    """The Task of a name ("lm", "clm", "classify", "tag", "regress", "seq2seq", "caption")."""
    return TASKS[name]

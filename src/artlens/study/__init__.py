"""The human-vs-machine similarity study (Ukiyo-e paper): questions, answers, analysis, and weights
learned from the participants' judgements."""

from artlens.study.answers import Answer, AnswerLog, Participants
from artlens.study.questions import Question, Study, create_study

__all__ = ["Answer", "AnswerLog", "Participants", "Question", "Study", "create_study"]

"""Custom Rasa NLU components (registered with Rasa's DefaultV1Recipe).

Importing them (Rasa does when it reads our model's graph, before loading any component) also
makes DIET load faster: see bot/serving/model_load.py.
"""
from bot.serving.model_load import install as _faster_diet_load

_faster_diet_load()

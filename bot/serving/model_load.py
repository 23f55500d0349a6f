"""Load DIET 4-5 s faster: its one-example warm-up training step runs eagerly.

Rasa builds a DIET model's variables before restoring its weights by running `fit` on one
example; with TensorFlow's graph mode that first traces and compiles the whole training step
(autograph), which was the largest single part of our server's start-up. Run eagerly, the same
step creates the same variables, the trained weights are then loaded over them exactly as
before, and prediction is still traced into a graph. Parses are identical (tests/test_serving.py).
Installed by bot/serving/patches.py (every server we start, `bot eval`, the simulator);
WALLET_FAST_MODEL_LOAD=0 turns it off.
"""
from __future__ import annotations

from typing import Any, Optional
from bot.config import settings


def install() -> None:
    if not settings().fast_model_load:
        return
    from rasa.utils.tensorflow.models import RasaModel

    if getattr(RasaModel.load, "_wallet_eager_warmup", False):
        return

    def load(cls, model_file_name: str, model_data_example: Any, predict_data_example: Optional[Any] = None,
             finetune_mode: bool = False, *args: Any, **kwargs: Any):
        import tensorflow as tf
        from rasa.utils.tensorflow.constants import LEARNING_RATE, RUN_EAGERLY
        from rasa.utils.tensorflow.data_generator import RasaBatchDataGenerator

        model = cls(*args, **kwargs)  # the steps of RasaModel.load (Rasa 3.6), warm-up eager
        config = kwargs.get("config", {})
        model.compile(optimizer=tf.keras.optimizers.Adam(config.get(LEARNING_RATE, 0.001)),
                      run_eagerly=config.get(RUN_EAGERLY))
        eager_before = tf.config.functions_run_eagerly()
        tf.config.run_functions_eagerly(True)
        try:
            model.fit(RasaBatchDataGenerator(model_data_example, batch_size=1), verbose=False)
        finally:
            tf.config.run_functions_eagerly(eager_before)
        model.load_weights(model_file_name)
        if not finetune_mode and predict_data_example:
            model.run_inference(predict_data_example)
        return model

    load._wallet_eager_warmup = True  # type: ignore[attr-defined]
    RasaModel.load = classmethod(load)

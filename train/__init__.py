"""The CineCtrl model: effect simulator, data, model, pipeline, fine-tuning, evaluation, serving."""

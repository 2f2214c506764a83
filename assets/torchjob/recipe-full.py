def prepare(model):
    """Continued pretraining: every weight trains (f32 masters), saved under its Hugging Face name."""
    return dict(model.named_parameters())


def saved_name(key):
    return None if M['tie_word_embeddings'] and key == 'lm_head.weight' else key

def loss_sum(model, ids, targets):
    """Next-token cross-entropy of the model's logits, summed over the target tokens."""
    logits = model(ids)
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction='sum')

LORA = JOB['lora']  # r, alpha, dropout, targets (PEFT's module names)
PARENT = {'q_proj': 'self_attn', 'k_proj': 'self_attn', 'v_proj': 'self_attn', 'o_proj': 'self_attn', 'gate_proj': 'mlp', 'up_proj': 'mlp', 'down_proj': 'mlp'}


class LoraLinear(nn.Module):
    """y = base(x) + scale * B A dropout(x), the base frozen (PEFT's LoRA, same parameter names)."""

    def __init__(self, base, r, scale, dropout):
        super().__init__()
        self.base, self.scale = base, scale
        self.lora_A, self.lora_B = linear(base.in_features, r, False), linear(r, base.out_features, False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(self.dropout(x))) * self.scale


def prepare(model):
    """LoRA: freeze the base, wrap the target projections; adapters start from shorten's initial
    weights (adapter_init.safetensors), so both engines begin from the same A and B."""
    init = read_safetensors(os.path.join(HERE, 'adapter_init.safetensors'))
    for p in model.parameters():
        p.requires_grad_(False)
    trainable = {}
    for i, layer in enumerate(model.model.layers):
        for t in LORA['targets']:
            parent = getattr(layer, PARENT[t])
            lora = LoraLinear(getattr(parent, t), LORA['r'], LORA['alpha'] / LORA['r'], LORA['dropout'])
            setattr(parent, t, lora)
            for ab in ('lora_A', 'lora_B'):
                name = f'base_model.model.model.layers.{i}.{PARENT[t]}.{t}.{ab}.weight'
                w = getattr(lora, ab).weight
                with torch.no_grad():
                    w.copy_(init[name])
                trainable[name] = w
    return trainable


def saved_name(key):
    return 'base_model.model.' + key if '.lora_' in key else None  # PEFT's keys; the frozen base is not saved
